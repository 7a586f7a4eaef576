"""ClientHooks: what a client tells an application's metrics as it happens."""

from __future__ import annotations

from collections.abc import Callable

from ._client import MQTTClient
from ._enums import QoS, ReasonCode
from ._message import Message
from ._status import Connected, Disconnected, Reconnecting


class ClientHooks:
    """Events of a client, for a metrics system: subclass it, override the methods you need,
    and pass an instance as ``open_client(hooks=...)``. One instance may serve many clients.

    Each method is called synchronously, in the client's own task, at the moment the event
    happens: it must be quick and must not block (count, or record into a histogram; hand
    anything slow to a task of yours through a channel). A method that raises is logged (the
    first time, with its traceback) and counted in :attr:`ClientStatistics.hook_errors`; the
    client goes on. A method not overridden is never called, and a client without hooks checks
    for them only on the events below, never per byte.

    The counters themselves (messages, bytes, queue depths, latency histogram) are kept in any
    case: :meth:`MQTTClient.statistics` reads them, with no hooks at all.
    """

    def on_client_opened(self, client: MQTTClient) -> None:
        """The client connected for the first time: its ``open_client`` block begins.

        Args:
            client: the client (e.g. to read its :meth:`~MQTTClient.statistics` later).

        Raises:
            Nothing to the client: what a hook raises is logged and counted (see
                :class:`ClientHooks`).
        """

    def on_client_closed(self, client: MQTTClient) -> None:
        """The client's ``open_client`` block ended, however it ended.

        Args:
            client: the client, now closed.

        Raises:
            Nothing to the client: what a hook raises is logged and counted (see
                :class:`ClientHooks`).
        """

    def on_connected(self, change: Connected) -> None:
        """A connection was made: the first one, or one after a loss.

        Args:
            change: the broker and whether it resumed the session.

        Raises:
            Nothing to the client: what a hook raises is logged and counted (see
                :class:`ClientHooks`).
        """

    def on_disconnected(self, change: Disconnected) -> None:
        """A connection was lost (the client reconnects if its policy says so).

        Args:
            change: the cause.

        Raises:
            Nothing to the client: what a hook raises is logged and counted (see
                :class:`ClientHooks`).
        """

    def on_reconnecting(self, change: Reconnecting) -> None:
        """The client is about to wait and then try to connect again.

        Args:
            change: the attempt's number, the delay, the broker and the previous failure.

        Raises:
            Nothing to the client: what a hook raises is logged and counted (see
                :class:`ClientHooks`).
        """

    def on_publish_acknowledged(
        self, topic: str, qos: QoS, reason_code: ReasonCode, latency: float
    ) -> None:
        """The broker acknowledged a QoS 1 or 2 publish (PUBACK or PUBCOMP; its reason code
        may be a refusal).

        Args:
            topic: the message's topic.
            qos: 1 or 2.
            reason_code: the broker's reason code (0x00 or 0x10 for success).
            latency: seconds from the PUBLISH handed to the connection to this
                acknowledgement (a resend after a reconnect counts from the first send).

        Raises:
            Nothing to the client: what a hook raises is logged and counted (see
                :class:`ClientHooks`).
        """

    def on_message_received(self, message: Message) -> None:
        """A message from the broker was routed to the subscriptions it matches (after
        duplicate suppression: a QoS 2 message arrives here once).

        Args:
            message: the message (not the subscriptions' copy: :meth:`Message.ack` does
                nothing on it).

        Raises:
            Nothing to the client: what a hook raises is logged and counted (see
                :class:`ClientHooks`).
        """


def overridden(hooks: ClientHooks) -> dict[str, Callable[..., None] | None]:
    """The methods ``hooks`` overrides, by event (``None`` for the others: never called)."""
    found: dict[str, Callable[..., None] | None] = {}
    for name in (
        "on_client_opened", "on_client_closed", "on_connected", "on_disconnected",
        "on_reconnecting", "on_publish_acknowledged", "on_message_received",
    ):  # fmt: skip
        mine = getattr(type(hooks), name) is not getattr(ClientHooks, name)
        found[name.removeprefix("on_")] = getattr(hooks, name) if mine else None
    return found
