"""What the client tells the application about its connection: states and state changes."""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import final

import attrs
import trio

from ._config import Endpoint
from ._construct import NoPublicConstructor
from ._enums import QoS
from ._exceptions import MQTTError
from ._sansio._limits import ServerLimits
from ._sansio._packets import ConnAck
from ._sansio._properties import Properties


class ClientState(enum.Enum):
    """Where an :class:`MQTTClient` is in its life."""

    CONNECTING = "connecting"  #: the first connection is being made
    CONNECTED = "connected"  #: connected; the session is restored
    RECONNECTING = "reconnecting"  #: the connection was lost; a new one is being made
    CLOSED = "closed"  #: closed by the application, or gave up reconnecting


@final
@attrs.frozen(kw_only=True)
class Connected:
    """A connection was made (the first one, or again after a loss).

    Attributes:
        endpoint: the broker connected to.
        session_present: whether the broker resumed the session (else subscriptions were
            restored by the client and unacknowledged messages sent again as new ones).
    """

    endpoint: Endpoint
    session_present: bool


@final
@attrs.frozen(kw_only=True)
class Disconnected:
    """The connection was lost (the client reconnects, if its policy says so).

    Attributes:
        cause: why (a :class:`ConnectionLostError`, :class:`RemoteProtocolError`, ...).
            Typed optional, but never ``None`` today: closing the client reports no
            ``Disconnected``; the watchers' iteration ends instead.
    """

    cause: MQTTError | None


@final
@attrs.frozen(kw_only=True)
class Reconnecting:
    """The client is about to try connecting again.

    Attributes:
        attempt: 1 for the first attempt after a loss, then 2, 3, ...
        delay: the seconds it waits first (backoff with jitter).
        endpoint: the broker it will try.
        cause: why the previous attempt or connection failed.
    """

    attempt: int
    delay: float
    endpoint: Endpoint
    cause: MQTTError


@final
@attrs.frozen(kw_only=True)
class ServerInfo:
    """What the broker's CONNACK said (section 3.2.2.3), for the current or latest
    connection: :attr:`MQTTClient.server`, renewed at every reconnect. An absent property
    has the value the spec gives it; MQTT 3.1.1 has no properties, so a 3.1.1 broker shows
    those defaults.

    Attributes:
        endpoint: the broker connected to.
        session_present: whether it resumed the session.
        assigned_client_identifier: the client id it chose (MQTT 5, when we sent none).
        server_keep_alive: the keep alive it imposed, in seconds (``None``: ours stands).
        receive_maximum: how many QoS 1/2 messages it takes unacknowledged from us.
        maximum_qos: the highest QoS it accepts from us (publishes above it are refused
            locally with LocalProtocolError 0x9B).
        retain_available: whether it accepts retained messages (else refused locally, 0x9A).
        maximum_packet_size: the largest packet it accepts (larger ones refused locally, 0x95).
        topic_alias_maximum: how many topic aliases it accepts from us.
        wildcard_subscription_available: whether it accepts wildcards in topic filters.
        subscription_identifier_available: whether it accepts subscription identifiers
            (without them the client routes messages to subscriptions by topic).
        shared_subscription_available: whether it accepts ``$share/...`` filters.
        response_information: the basis for response topics, if it gave one (asked for with
            ``open_client(request_response_information=True)``).
        server_reference: another server to use, if it named one.
        reason_string: its human-readable note, if any.
        user_properties: its User Properties, in order.
        properties: every CONNACK property, as received.
    """

    endpoint: Endpoint
    session_present: bool
    assigned_client_identifier: str | None
    server_keep_alive: int | None
    receive_maximum: int
    maximum_qos: QoS
    retain_available: bool
    maximum_packet_size: int
    topic_alias_maximum: int
    wildcard_subscription_available: bool
    subscription_identifier_available: bool
    shared_subscription_available: bool
    response_information: str | None
    server_reference: str | None
    reason_string: str | None
    user_properties: tuple[tuple[str, str], ...]
    properties: Properties


def server_info(endpoint: Endpoint, connack: ConnAck) -> ServerInfo:
    """The :class:`ServerInfo` of an accepted CONNACK from ``endpoint``."""
    props = connack.properties
    limits = ServerLimits.from_connack(props)
    return ServerInfo(
        endpoint=endpoint,
        session_present=connack.session_present,
        assigned_client_identifier=props.assigned_client_identifier,
        server_keep_alive=limits.server_keep_alive,
        receive_maximum=limits.receive_maximum,
        maximum_qos=limits.maximum_qos,
        retain_available=limits.retain_available,
        maximum_packet_size=limits.maximum_packet_size,
        topic_alias_maximum=limits.topic_alias_maximum,
        wildcard_subscription_available=limits.wildcard_subscription_available,
        subscription_identifier_available=limits.subscription_identifier_available,
        shared_subscription_available=limits.shared_subscription_available,
        response_information=props.response_information,
        server_reference=props.server_reference,
        reason_string=props.reason_string,
        user_properties=props.user_properties,
        properties=props,
    )


#: What :meth:`MQTTClient.watch_state` yields.
StateChange = Connected | Disconnected | Reconnecting

_WATCH_BUFFER = 256


class _Feed:
    """One watcher's queue of changes, filled by :class:`StateBroadcast`."""

    __slots__ = ("changes", "dropped", "ended", "lot")

    def __init__(self) -> None:
        self.changes: deque[StateChange] = deque(maxlen=_WATCH_BUFFER)
        self.lot = trio.lowlevel.ParkingLot()
        self.ended = False
        self.dropped = 0

    def push(self, change: StateChange) -> None:
        if len(self.changes) == _WATCH_BUFFER:
            self.dropped += 1
        self.changes.append(change)
        self.lot.unpark_all()

    def end(self) -> None:
        self.ended = True
        self.lot.unpark_all()


class StateBroadcast:
    """The client's state, and its changes told to every live :class:`StateWatcher`."""

    __slots__ = ("_feeds", "last", "state")

    def __init__(self) -> None:
        self.state = ClientState.CONNECTING
        self.last: StateChange | None = None  # the latest change: a new watcher's first
        # a list once someone watches (most clients never do: no list per client until then)
        self._feeds: list[_Feed] | tuple[()] = ()

    def watch(self) -> StateWatcher:
        """A new watcher: the latest change (where the client is now), then the changes from
        now on."""
        feed = _Feed()
        if self.state is ClientState.CLOSED:
            feed.end()  # nothing to tell: its iteration ends at once
            return StateWatcher._create(feed, self._detach)
        if self.last is not None:
            feed.push(self.last)
        if isinstance(self._feeds, list):
            self._feeds.append(feed)
        else:
            self._feeds = [feed]
        return StateWatcher._create(feed, self._detach)

    def _detach(self, feed: _Feed) -> None:
        if isinstance(self._feeds, list) and feed in self._feeds:
            self._feeds.remove(feed)

    def change(self, state: ClientState, change: StateChange | None) -> None:
        """The client is now in ``state``; tell the watchers ``change``, if any."""
        self.state = state
        if change is not None:
            self.last = change
            for feed in self._feeds:
                feed.push(change)

    def close(self) -> None:
        """The client is closed: every watcher's iteration ends."""
        self.state = ClientState.CLOSED
        for feed in self._feeds:
            feed.end()


@final
class StateWatcher(metaclass=NoPublicConstructor):
    """The connection's state changes, in order, as an async iterator.

    Get one from :meth:`MQTTClient.watch_state`. The first change it yields is the latest one
    before it was made, which tells where the client is now (a watcher started late is not
    blind): usually :class:`Connected`. It keeps the newest 256 changes if the
    application falls behind (older ones are dropped; :attr:`dropped` counts them). Iteration ends
    when the client closes.
    """

    __slots__ = ("_detach", "_feed")

    def __init__(self, feed: _Feed, detach: Callable[[_Feed], None]) -> None:
        self._feed = feed
        self._detach = detach

    @property
    def dropped(self) -> int:
        """How many changes were dropped because the application fell behind."""
        return self._feed.dropped

    def __aiter__(self) -> StateWatcher:
        return self

    async def __anext__(self) -> StateChange:
        await trio.lowlevel.checkpoint_if_cancelled()
        feed = self._feed
        while not feed.changes:
            if feed.ended:
                raise StopAsyncIteration
            await feed.lot.park()
        change = feed.changes.popleft()
        await trio.lowlevel.cancel_shielded_checkpoint()
        return change

    def __enter__(self) -> StateWatcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._feed.end()
        self._detach(self._feed)
