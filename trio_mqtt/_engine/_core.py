"""ClientCore: what one client is, behind the :class:`MQTTClient` facade.

It owns the client's state (connecting, ready, closed, failed) and its parts: the
:class:`Outbox` (outbound work), the :class:`Router` (inbound messages to inboxes) and
:class:`Subscribing` (the subscriptions' life). It is the single listener of each link
(:class:`LinkListener`: what the link received) and of the supervisor
(:class:`SupervisorListener`: links coming and going, state changes), and dispatches to its
parts; none of them calls back up.

Ready means connected *and* restored (subscriptions renewed after a lost session): only then
does new work go to the link (``outbox.link`` is set); before, it waits in the outbox.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import trio

from .._config import Endpoint
from .._exceptions import MQTTError
from .._io._link import Link
from .._message import message_from_publish
from .._sansio._events import Acknowledged, Event
from .._sansio._packets import ConnAck, Publish
from .._sansio._poison import Poison
from .._status import (
    ClientState,
    Connected,
    Disconnected,
    StateBroadcast,
    StateChange,
)
from ._metrics import HookCaller
from ._outbox import Outbox
from ._router import Router
from ._subscribing import Subscribing

# The ready event of every client that is ready: a set Event takes no waiter (wait() returns at
# once), so one can serve them all, where each kept its own, set, with its empty set of tasks
# (270 bytes per idle client). A client that stops being ready makes a new one.
SET_EVENT = trio.Event()
SET_EVENT.set()


class ClientCore:
    """One client's state and parts; the listener of its links and of its supervisor."""

    __slots__ = (
        "_closed",
        "_failure",
        "_ready",
        "_ready_event",
        "accepted",
        "acknowledged",
        "hooks",
        "link",
        "message_nowait",
        "outbox",
        "router",
        "status",
        "subscribing",
    )  # fmt: skip

    def __init__(
        self,
        outbox: Outbox,
        *,
        subscription_identifiers: bool = True,
        hooks: HookCaller | None = None,
    ) -> None:
        self.outbox = outbox
        self.router = Router()
        #: the application's hooks, if it gave any (see _metrics)
        self.hooks = outbox.hooks = hooks
        # LinkListener's two per-message functions: the router's and the outbox's own (with
        # a hook on messages, the router's behind one that tells it)
        self.message_nowait: Callable[[Publish], bool] = self.router.route_nowait
        if hooks is not None and hooks.message_received is not None:
            self.message_nowait = self._route_nowait_and_tell
        self.acknowledged: Callable[[Acknowledged], None] = outbox.acknowledged
        self.subscribing = Subscribing(
            self.router, outbox, self.ready_event, identifiers=subscription_identifiers
        )
        self.status = StateBroadcast()
        self.link: Link | None = None  # the current link (ready or not)
        #: the latest accepted connection: its broker and CONNACK
        self.accepted: tuple[Endpoint, ConnAck] | None = None
        self._ready = False  # connected and restored: new work may go out
        self._ready_event = trio.Event()
        self._closed = False
        self._failure: MQTTError | None = None

    # -- the client's state ----------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Connected, with the session restored."""
        return self._ready

    def check_open(self) -> None:
        """Raise if the client failed (its error) or was closed (ClosedResourceError)."""
        if self._failure is not None:
            raise self._failure
        if self._closed:
            raise trio.ClosedResourceError("the client is closed")

    def ready_event(self) -> trio.Event | None:
        """``None`` when ready; else the event set when that may have changed.

        Raises:
            MQTTError: the client failed.
            trio.ClosedResourceError: the client is closed.
        """
        if self._ready:
            return None
        self.check_open()
        return self._ready_event

    async def wait_connected(self) -> None:
        """Wait until ready (a checkpoint either way); raises as :meth:`ready_event`."""
        while (event := self.ready_event()) is not None:
            await event.wait()
        await trio.lowlevel.checkpoint()

    def closing(self) -> None:
        """The application is leaving the client's block: no new work, no unsubscribing."""
        self._closed = True
        self.outbox.hold()

    def finish(self, error: MQTTError | None) -> None:
        """The client is done for good: fail every waiter and end every subscription."""
        self._closed = True
        self._ready = False
        if error is not None and self._failure is None:
            self._failure = error
        self.outbox.finish(error or trio.ClosedResourceError("the client is closed"))
        self._ready_event.set()
        self._ready_event = SET_EVENT  # (its own, set, is let go)
        self.subscribing.finish(error)
        self.status.close()

    # -- LinkListener: what the link received ------------------------------------------------------

    async def deliver(self, event: Event) -> None:
        """A message that has to wait for room (the link handles the rest itself)."""
        if isinstance(event, Publish):
            await self.router.route(event)
            if self.hooks is not None:
                self._tell_received(event)

    def _route_nowait_and_tell(self, publish: Publish) -> bool:
        """:meth:`Router.route_nowait`, then the message hook (once routed)."""
        if not self.router.route_nowait(publish):
            return False  # deliver() routes it, and tells
        self._tell_received(publish)
        return True

    def _tell_received(self, publish: Publish) -> None:
        hooks = self.hooks
        assert hooks is not None
        hook = hooks.message_received
        if hook is not None:
            try:  # HookCaller.call, inline: this one runs per message
                hook(message_from_publish(publish))
            except Exception:
                hooks.failed(hook)

    def link_ending(self) -> None:
        """The link takes no new work (it fails, or flushes a DISCONNECT after a protocol
        error): new publishes and subscriptions wait for the next connection."""
        self._ready = False
        self.outbox.hold()
        if self._ready_event.is_set():
            self._ready_event = trio.Event()

    # -- SupervisorListener: links coming and going -----------------------------------------------

    def link_new(
        self, link: Link, connack: ConnAck, *, persistent: bool, endpoint: Endpoint
    ) -> None:
        """A link to ``endpoint`` is connected; its tasks are about to run."""
        self.link = link
        self.accepted = (endpoint, connack)
        self.subscribing.link_new(link, connack.session_present, persistent)

    def link_up_nowait(self, link: Link, connack: ConnAck) -> bool:
        """The link runs: restore what the broker forgot and open the gate, when that needs
        no waiting; False if it does (then :meth:`link_up`)."""
        if not self.subscribing.restore_nowait(link, connack.session_present):
            return False
        self._open(link)
        return True

    async def link_up(self, link: Link, connack: ConnAck) -> None:
        """Renew the subscriptions a lost session forgot, then open the gate."""
        if await self.subscribing.renew(link):
            self._open(link)
        # else lost again; the supervisor reconnects

    def _open(self, link: Link) -> None:
        if self._closed:
            return  # the application left meanwhile
        self._ready = True
        self._ready_event.set()
        self._ready_event = SET_EVENT  # (its own, set, is let go)
        self.outbox.open(link)

    def link_down(self, error: MQTTError | None, poison: Sequence[Poison]) -> None:
        """The link ended; ``poison``'s requests are given up on (see _sansio._poison)."""
        self.link_ending()
        self.subscribing.link_down(poison)
        self.outbox.link_down({p.suspect.packet_id: p.error for p in poison})

    def state_changed(self, state: ClientState, change: StateChange | None) -> None:
        self.status.change(state, change)
        hooks = self.hooks
        if hooks is None or change is None:
            return
        if isinstance(change, Connected):
            hook = hooks.connected
        elif isinstance(change, Disconnected):
            hook = hooks.disconnected
        else:
            hook = hooks.reconnecting
        if hook is not None:
            hooks.call(hook, change)
