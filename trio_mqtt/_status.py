"""What the client tells the application about its connection: states and state changes."""

from __future__ import annotations

import enum
from collections import deque
from types import TracebackType
from typing import final

import attrs
import trio

from ._config import Endpoint
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


@final
class StateWatcher:
    """The connection's state changes, in order, as an async iterator.

    Get one from :meth:`MQTTClient.watch_state`. It keeps the newest 256 changes if the
    application falls behind (older ones are dropped; :attr:`dropped` counts them). Iteration ends
    when the client closes.
    """

    def __init__(self, detach: object) -> None:
        self._changes: deque[StateChange] = deque(maxlen=_WATCH_BUFFER)
        self._lot = trio.lowlevel.ParkingLot()
        self._ended = False
        self._detach = detach
        self.dropped = 0

    def _push(self, change: StateChange) -> None:
        if len(self._changes) == _WATCH_BUFFER:
            self.dropped += 1
        self._changes.append(change)
        self._lot.unpark_all()

    def _end(self) -> None:
        self._ended = True
        self._lot.unpark_all()

    def __aiter__(self) -> StateWatcher:
        return self

    async def __anext__(self) -> StateChange:
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self._changes:
            if self._ended:
                raise StopAsyncIteration
            await self._lot.park()
        change = self._changes.popleft()
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
        self._end()
        if callable(self._detach):
            self._detach(self)
