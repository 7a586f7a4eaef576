"""The contract between a link and the client's engine: what the link reports, and how a
link's end is told (always as one :class:`MQTTError`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .._exceptions import ConnectionLostError, MQTTError
from .._sansio._events import Acknowledged, Event
from .._sansio._packets import Publish


def lost(message: str, cause: BaseException | None = None) -> ConnectionLostError:
    error = ConnectionLostError(message)
    error.__cause__ = cause
    return error


def as_mqtt_error(exc: Exception) -> MQTTError:
    """What ends a link, as the client reports it: transport errors are a lost connection."""
    if isinstance(exc, MQTTError):
        return exc
    return lost(f"the network connection broke: {exc or type(exc).__name__}", exc)


class LinkListener(Protocol):
    """Who hears what a link receives: the client's engine. The link calls nothing else.

    The first two are attributes, not methods, so that the engine can hand the link its
    router's and outbox's own functions: one call per message on the hot path.
    """

    #: Take an inbound message if that needs no waiting; False if it has to wait (a full
    #: subscription buffer): then the link calls :meth:`deliver` for it.
    message_nowait: Callable[[Publish], bool]

    #: The broker acknowledged one of our requests (PUBACK, PUBCOMP, SUBACK, UNSUBACK).
    acknowledged: Callable[[Acknowledged], None]

    async def deliver(self, event: Event) -> None:
        """Take a message, waiting as long as that takes (backpressure)."""

    def link_ending(self) -> None:
        """The link takes no new work from now on (it fails, or flushes a DISCONNECT)."""
