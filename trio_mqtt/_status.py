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
from ._exceptions import MQTTError


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
    """The connection ended.

    Attributes:
        cause: why (a :class:`ConnectionLostError`, :class:`RemoteProtocolError`, ...), or
            ``None`` when the application closed the client.
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
