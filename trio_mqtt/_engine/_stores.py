"""Session stores: where a session's in-flight state lives, so it can outlive a client or process.

A store follows every change of the session as a :class:`SessionJournal` and is asked to
:meth:`SessionStore.flush` before each write to the network, so that nothing is ever sent that the
store has not recorded (a PUBLISH) and no PUBREC leaves before its packet id is recorded. It also
keeps the QoS 1/2 publishes the client accepted but could not send yet (offline, or waiting for
the broker's Receive Maximum), flushed as they are accepted, and the inbound QoS 2 flows completed
recently (so that a broker's resend of one after a restart is not delivered twice).
"""

from __future__ import annotations

import abc
import os
import sqlite3
from collections.abc import Iterable, Sequence
from typing import final

import attrs

from .._enums import ProtocolVersion
from .._sansio._codec import decode_packet, encode_packet
from .._sansio._packets import Publish, PubRel
from .._sansio._session import SessionState


@final
@attrs.frozen(kw_only=True)
class SavedSession:
    """What a :class:`SessionStore` gives back for a client: its session as the store kept it.

    Attributes:
        outbound: the QoS 1/2 PUBLISHes and PUBRELs awaiting their final acknowledgement, by
            packet id, in send order (a PUBREL takes its PUBLISH's place).
        inbound: the packet ids of inbound QoS 2 messages handed to the application whose
            PUBREL has not arrived.
        released: inbound QoS 2 flows completed recently: (packet id, the message's
            fingerprint, or ``None``), oldest first.
        queued: QoS 1/2 publishes accepted but never sent: (key, PUBLISH), in call order.
    """

    outbound: Sequence[tuple[int, Publish | PubRel]] = ()
    inbound: Iterable[int] = ()
    released: Sequence[tuple[int, int | None]] = ()
    queued: Sequence[tuple[int, Publish]] = ()


class SessionStore(abc.ABC):
    """Keeps one client's session: outbound QoS 1/2 messages and PUBRELs awaiting their final
    acknowledgement, in send order; QoS 1/2 publishes accepted but not yet sent, in call order;
    inbound QoS 2 packet ids awaiting PUBREL, and those completed recently.

    A store is bound to one client identifier by :meth:`load`; the client then reports every
    change through the other methods and calls :meth:`flush` before sending. The methods are
    synchronous and are called from the event loop: keep them short. To write one (Redis, a
    file), implement the abstract methods; :class:`MemorySessionStore` is the simplest example.
    """

    @abc.abstractmethod
    def load(self, client_id: str, protocol: ProtocolVersion) -> SavedSession:
        """Bind to ``client_id`` (every later call is about its session) and return what is
        saved for it.

        Args:
            client_id: whose session.
            protocol: the version spoken, for decoding stored packets.

        Returns:
            What is saved (an empty :class:`SavedSession` if nothing is).

        Raises:
            Whatever the storage raises: the client does not catch it, so a failing store
            stops the operation that needed it.
        """

    @abc.abstractmethod
    def outbound_stored(self, packet_id: int, packet: Publish | PubRel) -> None:
        """A PUBLISH was stored, or its PUBREL replaced it (keeping its place in send order).

        Args:
            packet_id: the flow's packet identifier.
            packet: the PUBLISH, or the PUBREL that replaces it.

        Raises:
            Whatever the storage raises: the client does not catch it, so a failing store
            stops the operation that needed it.
        """

    @abc.abstractmethod
    def outbound_removed(self, packet_id: int) -> None:
        """The flow of ``packet_id`` ended.

        Args:
            packet_id: the flow's packet identifier.

        Raises:
            Whatever the storage raises: the client does not catch it, so a failing store
            stops the operation that needed it.
        """

    @abc.abstractmethod
    def inbound_added(self, packet_id: int) -> None:
        """The application took inbound QoS 2 message ``packet_id``; its PUBREC follows.

        Args:
            packet_id: the message's packet identifier.

        Raises:
            Whatever the storage raises: the client does not catch it, so a failing store
            stops the operation that needed it.
        """

    @abc.abstractmethod
    def inbound_removed(self, packet_id: int) -> None:
        """PUBREL arrived for inbound QoS 2 ``packet_id``.

        Args:
            packet_id: the message's packet identifier.

        Raises:
            Whatever the storage raises: the client does not catch it, so a failing store
            stops the operation that needed it.
        """

    @abc.abstractmethod
    def cleared(self) -> None:
        """The session was discarded.

        Raises:
            Whatever the storage raises: the client does not catch it, so a failing store
            stops the operation that needed it.
        """

    @abc.abstractmethod
    def released_added(self, packet_id: int, fingerprint: int | None) -> None:
        """Inbound QoS 2 flow ``packet_id`` was completed; remember its message's fingerprint.

        Args:
            packet_id: the flow's packet identifier.
            fingerprint: what tells a resend of that message from a new one (None: unknown).

        Raises:
            Whatever the storage raises: the client does not catch it, so a failing store
            stops the operation that needed it.
        """

    @abc.abstractmethod
    def released_removed(self, packet_ids: list[int]) -> None:
        """Completed inbound QoS 2 flows no longer remembered.

        Args:
            packet_ids: their packet identifiers.

        Raises:
            Whatever the storage raises: the client does not catch it, so a failing store
            stops the operation that needed it.
        """

    @abc.abstractmethod
    def queued_added(self, key: int, packet: Publish) -> None:
        """The client accepted a QoS 1/2 publish it cannot send yet; flushed at once, so a
        crash from here on does not lose it.

        Args:
            key: its place in call order.
            packet: the PUBLISH (without a packet identifier yet).

        Raises:
            Whatever the storage raises: the client does not catch it, so a failing store
            stops the operation that needed it.
        """

    @abc.abstractmethod
    def queued_removed(self, key: int) -> None:
        """That publish was handed to a connection (and stored as outbound), or given up.

        Args:
            key: its place in call order.

        Raises:
            Whatever the storage raises: the client does not catch it, so a failing store
            stops the operation that needed it.
        """

    def flush(self) -> None:  # noqa: B027 (optional hook)
        """Make every change so far durable; called before each write to the network.

        Raises:
            Whatever the storage raises: the client does not catch it, so a failing store
            stops the operation that needed it.
        """

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release resources; the client calls it when it closes.

        Raises:
            Nothing the client handles: errors reach ``open_client``'s caller.
        """


class MemorySessionStore(SessionStore):
    """Keeps sessions in this process, so a later ``open_client`` with the same client id and
    store resumes them (the broker's session too, with ``clean_start=False``)."""

    def __init__(self) -> None:
        self._sessions: dict[str, _MemorySession] = {}

    def _current(self) -> _MemorySession:
        return self._sessions.setdefault(self._client_id, _MemorySession())

    def load(self, client_id: str, protocol: ProtocolVersion) -> SavedSession:
        self._client_id = client_id
        self._protocol = protocol
        saved = self._current()
        return SavedSession(
            outbound=list(saved.outbound.items()),
            inbound=set(saved.inbound),
            released=list(saved.released.items()),
            queued=list(saved.queued.items()),
        )

    def outbound_stored(self, packet_id: int, packet: Publish | PubRel) -> None:
        self._current().outbound[packet_id] = packet

    def outbound_removed(self, packet_id: int) -> None:
        self._current().outbound.pop(packet_id, None)

    def inbound_added(self, packet_id: int) -> None:
        self._current().inbound.add(packet_id)

    def inbound_removed(self, packet_id: int) -> None:
        self._current().inbound.discard(packet_id)

    def released_added(self, packet_id: int, fingerprint: int | None) -> None:
        released = self._current().released
        released.pop(packet_id, None)  # newest last
        released[packet_id] = fingerprint

    def released_removed(self, packet_ids: list[int]) -> None:
        released = self._current().released
        for packet_id in packet_ids:
            released.pop(packet_id, None)

    def queued_added(self, key: int, packet: Publish) -> None:
        self._current().queued[key] = packet

    def queued_removed(self, key: int) -> None:
        self._current().queued.pop(key, None)

    def cleared(self) -> None:
        saved = self._current()
        saved.outbound.clear()
        saved.inbound.clear()
        saved.released.clear()  # the queue is the application's, not the session's


@attrs.define
class _MemorySession:
    outbound: dict[int, Publish | PubRel] = attrs.Factory(dict)
    inbound: set[int] = attrs.Factory(set)
    released: dict[int, int | None] = attrs.Factory(dict)
    queued: dict[int, Publish] = attrs.Factory(dict)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbound (
    client_id TEXT NOT NULL, packet_id INTEGER NOT NULL, seq INTEGER NOT NULL,
    protocol INTEGER NOT NULL, packet BLOB NOT NULL, PRIMARY KEY (client_id, packet_id));
CREATE TABLE IF NOT EXISTS inbound (
    client_id TEXT NOT NULL, packet_id INTEGER NOT NULL, PRIMARY KEY (client_id, packet_id));
CREATE TABLE IF NOT EXISTS released (
    client_id TEXT NOT NULL, packet_id INTEGER NOT NULL, seq INTEGER NOT NULL,
    fingerprint INTEGER, PRIMARY KEY (client_id, packet_id));
CREATE TABLE IF NOT EXISTS queued (
    client_id TEXT NOT NULL, key INTEGER NOT NULL, protocol INTEGER NOT NULL,
    packet BLOB NOT NULL, PRIMARY KEY (client_id, key));
"""


class SQLiteSessionStore(SessionStore):
    """Keeps sessions in an SQLite file (standard library ``sqlite3``), so that a new process
    with the same client id and file finishes what a crashed one left: unacknowledged QoS 1/2
    messages are resent, pending PUBRELs completed, and inbound QoS 2 messages not delivered twice.

    Changes are committed once per network write, before it (write-ahead log). With
    ``durable=False`` (the default) a commit survives a crash of the process but not necessarily
    of the machine; ``durable=True`` also waits for the disk (``synchronous=FULL``), which costs an
    fsync per write batch.

    Args:
        path: the database file; created if missing. It may hold the sessions of many client
            ids, but serves one live client at a time: a second store writing to the same file
            concurrently waits for the first one's lock and then fails.
        durable: survive power loss too, at the cost of an fsync per write batch.
    """

    def __init__(self, path: str | os.PathLike[str], *, durable: bool = False) -> None:
        self.path = os.fspath(path)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._db.executescript(_SCHEMA)
        self._in_transaction = False
        self._seq = 0

    def __repr__(self) -> str:
        return f"<SQLiteSessionStore {self.path!r}>"

    def _write(self, sql: str, *args: object) -> None:
        if not self._in_transaction:
            self._db.execute("BEGIN")
            self._in_transaction = True
        self._db.execute(sql, (self._client_id, *args))

    def load(self, client_id: str, protocol: ProtocolVersion) -> SavedSession:
        self._client_id = client_id
        self._protocol = protocol
        rows = self._db.execute(
            "SELECT packet_id, protocol, packet, seq FROM outbound WHERE client_id = ? ORDER BY seq",
            (self._client_id,),
        ).fetchall()
        outbound: list[tuple[int, Publish | PubRel]] = []
        for packet_id, protocol, data, seq in rows:
            packet = decode_packet(data, ProtocolVersion(protocol))
            assert isinstance(packet, Publish | PubRel)
            outbound.append((packet_id, packet))
            self._seq = max(self._seq, seq)
        inbound = [
            row[0]
            for row in self._db.execute(
                "SELECT packet_id FROM inbound WHERE client_id = ?", (self._client_id,)
            )
        ]
        released = []
        for packet_id, seq, mark in self._db.execute(
            "SELECT packet_id, seq, fingerprint FROM released WHERE client_id = ? ORDER BY seq",
            (self._client_id,),
        ):
            released.append((packet_id, mark))
            self._seq = max(self._seq, seq)
        queued = []
        for key, protocol, data in self._db.execute(
            "SELECT key, protocol, packet FROM queued WHERE client_id = ? ORDER BY key",
            (self._client_id,),
        ):
            packet = decode_packet(data, ProtocolVersion(protocol))
            assert isinstance(packet, Publish)
            queued.append((key, packet))
        return SavedSession(
            outbound=outbound, inbound=inbound, released=released, queued=queued
        )

    def outbound_stored(self, packet_id: int, packet: Publish | PubRel) -> None:
        data = encode_packet(packet, self._protocol)
        if isinstance(
            packet, PubRel
        ):  # replaces its PUBLISH, keeping the place in order
            self._write(
                "UPDATE outbound SET packet = ?3 WHERE client_id = ?1 AND packet_id = ?2",
                packet_id,
                data,
            )
            return
        self._seq += 1
        self._write(
            "INSERT OR REPLACE INTO outbound VALUES (?, ?, ?, ?, ?)",
            packet_id,
            self._seq,
            int(self._protocol),
            data,
        )

    def outbound_removed(self, packet_id: int) -> None:
        self._write(
            "DELETE FROM outbound WHERE client_id = ? AND packet_id = ?", packet_id
        )

    def inbound_added(self, packet_id: int) -> None:
        self._write("INSERT OR IGNORE INTO inbound VALUES (?, ?)", packet_id)

    def inbound_removed(self, packet_id: int) -> None:
        self._write(
            "DELETE FROM inbound WHERE client_id = ? AND packet_id = ?", packet_id
        )

    def released_added(self, packet_id: int, fingerprint: int | None) -> None:
        self._seq += 1
        self._write(
            "INSERT OR REPLACE INTO released VALUES (?, ?, ?, ?)",
            packet_id,
            self._seq,
            fingerprint,
        )

    def released_removed(self, packet_ids: list[int]) -> None:
        for packet_id in packet_ids:
            self._write(
                "DELETE FROM released WHERE client_id = ? AND packet_id = ?", packet_id
            )

    def queued_added(self, key: int, packet: Publish) -> None:
        self._write(
            "INSERT OR REPLACE INTO queued VALUES (?, ?, ?, ?)",
            key,
            int(self._protocol),
            encode_packet(packet, self._protocol),
        )
        self.flush()

    def queued_removed(self, key: int) -> None:
        self._write("DELETE FROM queued WHERE client_id = ? AND key = ?", key)

    def cleared(self) -> None:
        self._write("DELETE FROM outbound WHERE client_id = ?")
        self._write("DELETE FROM inbound WHERE client_id = ?")
        self._write("DELETE FROM released WHERE client_id = ?")

    def flush(self) -> None:
        if self._in_transaction:
            self._db.execute("COMMIT")
            self._in_transaction = False

    def close(self) -> None:
        self.flush()
        self._db.close()


def open_session(
    store: SessionStore, client_id: str, protocol: ProtocolVersion
) -> SessionState:
    """The session ``store`` saved for ``client_id``, journaled to the store from now on."""
    saved = store.load(client_id, protocol)
    state = SessionState.restore(
        saved.outbound, saved.inbound, saved.released, saved.queued
    )
    state.journal = store
    return state
