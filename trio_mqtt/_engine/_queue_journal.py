"""QueueJournal: the QoS 1/2 publishes waiting in the client's queue, kept in a session store.

A publish the client accepts but cannot hand to a connection yet (offline, or waiting for a slot
under the broker's Receive Maximum) is not in the session's outbound state: it has no packet id.
With a :class:`SessionStore` it is journaled here as it is accepted (and flushed at once), and
removed when a connection takes it (the store then has it as outbound, in the same commit) or
when its caller gives up. A new process with the same store sends the ones a crash left, first.
"""

from __future__ import annotations

from .._enums import QoS
from .._sansio._packets import Publish
from .._sansio._properties import Properties
from ._stores import SessionStore

# Queued publishes have no packet id yet; the stored form carries this one, never used.
_PLACEHOLDER_ID = 1


class QueueJournal:
    """Keys the journaled publishes by their place in call order."""

    __slots__ = ("_next", "_store")

    def __init__(
        self, store: SessionStore, restored: list[tuple[int, Publish]]
    ) -> None:
        self._store = store
        self._next = max((key for key, _ in restored), default=0) + 1

    def added(self, publish: Publish) -> int:
        """Journal an accepted publish (flushed by the store); returns its key."""
        key = self._next
        self._next += 1
        self._store.queued_added(key, publish)
        return key

    def removed(self, key: int) -> None:
        """The publish of ``key`` left the queue (committed with the next flush)."""
        self._store.queued_removed(key)


def stored_form(
    topic: str, payload: bytes, qos: QoS, retain: bool, properties: Properties
) -> Publish:
    """The PUBLISH a queued request is journaled as."""
    return Publish(
        topic=topic,
        payload=payload,
        qos=qos,
        retain=retain,
        packet_id=_PLACEHOLDER_ID,
        properties=properties,
    )
