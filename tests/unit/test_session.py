"""The session machine across connections (sans I/O): resume order, DUP, PUBREL, a lost session,
the server's Receive Maximum, acknowledgement order, inbound QoS 2 exactly-once; the reconnect
policy, Server Reference parsing, and the SQLite session store."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from trio_mqtt import (
    Endpoint,
    ProtocolVersion,
    ReasonCode,
    ReconnectPolicy,
    SavedSession,
    SessionStore,
    SQLiteSessionStore,
)
from trio_mqtt._config import parse_server_reference
from trio_mqtt._engine._stores import open_session
from trio_mqtt._sansio._codec import PacketReader, encode_packet
from trio_mqtt._sansio._connection import MQTTConnection, QuotaExceeded
from trio_mqtt._sansio._events import PublishAcknowledged
from trio_mqtt._sansio._packets import (
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PingReq,
    PingResp,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
)
from trio_mqtt._sansio._properties import Properties
from trio_mqtt._sansio._session import CONFIRM_EVERY, SessionState

V5, V311 = ProtocolVersion.V5, ProtocolVersion.V311
VERSIONS = [V5, V311]


def connected(
    session: SessionState,
    version: ProtocolVersion = V5,
    *,
    present: bool = True,
    server_receive_maximum: int | None = None,
    receive_maximum: int = 65535,
) -> tuple[MQTTConnection, list[Packet]]:
    """A connection of ``session`` after CONNACK, and what it sent right after CONNACK."""
    conn = MQTTConnection(
        version=version, session=session, receive_maximum=receive_maximum
    )
    conn.connect(
        Connect(protocol_version=version, client_id="c", clean_start=False), now=0
    )
    conn.data_to_send(now=0)  # the CONNECT
    props = Properties(receive_maximum=server_receive_maximum)
    connack = ConnAck(
        session_present=present, properties=props if version is V5 else Properties()
    )
    conn.receive_data(encode_packet(connack, version), now=0)
    return conn, sent(conn)


def sent(conn: MQTTConnection) -> list[Packet]:
    return PacketReader(version=conn.version).feed(conn.data_to_send(now=0))


def feed(conn: MQTTConnection, *packets: Packet) -> list[object]:
    data = b"".join(encode_packet(p, conn.version) for p in packets)
    return list(conn.receive_data(data, now=0))


def publish(
    n: int, qos: int, packet_id: int | None = None, dup: bool = False
) -> Publish:
    return Publish(topic="t", payload=b"%d" % n, qos=qos, packet_id=packet_id, dup=dup)


@pytest.mark.parametrize("version", VERSIONS)
def test_resume_resends_in_original_order_publish_with_dup_and_pubrel(
    version: ProtocolVersion,
) -> None:
    """[MQTT-4.4.0-1] unacknowledged PUBLISH (DUP=1, [MQTT-3.3.1-1]) and PUBREL are resent in
    their original order, before anything new."""
    session = SessionState()
    conn, _ = connected(session, version, present=False)
    ids = [
        conn.publish("t", b"%d" % n, qos=1 + n % 2) for n in range(4)
    ]  # QoS 1, 2, 1, 2
    assert [p.dup for p in sent(conn)] == [False] * 4
    feed(conn, PubRec(packet_id=ids[1]))  # the first QoS 2 moves on to PUBREL
    assert sent(conn) == [PubRel(packet_id=ids[1])]

    again, resent = connected(session, version, present=True)
    assert [(type(p).__name__, p.packet_id) for p in resent] == [
        ("Publish", ids[0]),
        ("PubRel", ids[1]),
        ("Publish", ids[2]),
        ("Publish", ids[3]),
    ]
    assert all(p.dup for p in resent if isinstance(p, Publish))
    assert [p.payload for p in resent if isinstance(p, Publish)] == [b"0", b"2", b"3"]
    # the flows finish on the new connection
    events = feed(again, PubAck(packet_id=ids[0]), PubComp(packet_id=ids[1]))
    assert [e.packet_id for e in events if isinstance(e, PublishAcknowledged)] == ids[
        :2
    ]
    assert list(session.outbound) == ids[2:]


@pytest.mark.parametrize("version", VERSIONS)
def test_lost_session_resends_publishes_as_new_and_ends_pubrel_flows(
    version: ProtocolVersion,
) -> None:
    """Section 4.1: without a session the server owns a message it PUBRECed already; unfinished
    PUBLISHes go again as new messages (DUP=0); inbound QoS 2 state is void."""
    session = SessionState()
    conn, _ = connected(session, version, present=False)
    first, second = (conn.publish("t", b"x", qos=2) for _ in range(2))
    feed(conn, PubRec(packet_id=first))
    feed(conn, publish(9, 2, packet_id=77))
    conn.acknowledge(77)
    assert session.inbound_qos2 == {77}

    conn2 = MQTTConnection(version=version, session=session)
    conn2.connect(Connect(protocol_version=version, client_id="c"), now=0)
    conn2.data_to_send(now=0)
    events = feed(conn2, ConnAck(session_present=False))
    assert PublishAcknowledged(first, ReasonCode.SUCCESS) in events
    resent = sent(conn2)
    assert resent == [
        Publish(topic="t", payload=b"x", qos=2, packet_id=second, dup=False)
    ]
    assert session.inbound_qos2 == set()


def test_resend_respects_the_server_receive_maximum_and_new_publishes_wait() -> None:
    """[MQTT-4.9.0-2] never more unacknowledged QoS 1/2 PUBLISHes than the server's Receive
    Maximum; new publishes wait until the resent backlog is through."""
    session = SessionState()
    conn, _ = connected(session, present=False)
    ids = [conn.publish("t", b"%d" % n, qos=1) for n in range(3)]
    again, resent = connected(session, present=True, server_receive_maximum=2)
    assert [p.packet_id for p in resent] == ids[:2]
    assert not again.send_quota_available
    with pytest.raises(QuotaExceeded):
        again.publish("t", b"new", qos=1)
    feed(again, PubAck(packet_id=ids[0]))
    assert [p.packet_id for p in sent(again)] == [ids[2]]  # the backlog first
    assert not again.send_quota_available
    feed(again, PubAck(packet_id=ids[1]))
    assert again.send_quota_available
    new = again.publish("t", b"new", qos=1)
    assert new not in ids[1:]


@pytest.mark.parametrize("version", VERSIONS)
def test_acknowledgements_leave_in_arrival_order(version: ProtocolVersion) -> None:
    """[MQTT-4.6.0-2] PUBACKs and [MQTT-4.6.0-3] PUBRECs in the order the PUBLISHes arrived, even
    when the application acknowledges out of order (manual ack)."""
    conn, _ = connected(SessionState(), version, present=False)
    events = feed(conn, publish(1, 1, 1), publish(2, 2, 2), publish(3, 1, 3))
    assert [type(e) for e in events] == [Publish] * 3
    conn.acknowledge(3)
    conn.acknowledge(2)
    assert sent(conn) == []
    conn.acknowledge(1)
    assert sent(conn) == [PubAck(packet_id=1), PubRec(packet_id=2), PubAck(packet_id=3)]
    conn.acknowledge(1)  # repeated: ignored
    assert sent(conn) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_acknowledged_qos2_is_never_delivered_again_even_before_its_pubrec_left(
    version: ProtocolVersion,
) -> None:
    """[MQTT-4.3.3-9] A QoS 2 message the application has is not handed over again when the
    connection drops while its PUBREC waits behind an earlier message's ack (found by the chaos
    run: 52 duplicates in 5,000 before the fix)."""
    session = SessionState()
    conn, _ = connected(session, version, present=False)
    feed(conn, publish(1, 1, 1), publish(2, 2, 2))
    conn.acknowledge(2)  # held back: message 1 is not acknowledged yet
    assert sent(conn) == []
    # the connection drops; the resumed session redelivers both
    again, _ = connected(session, version, present=True)
    events = feed(again, publish(1, 1, 1, dup=True), publish(2, 2, 2, dup=True))
    assert [e.payload for e in events if isinstance(e, Publish)] == [b"1"]
    assert sent(again) == [PubRec(packet_id=2)]
    feed(again, PubRel(packet_id=2))
    assert sent(again) == [PubComp(packet_id=2)]
    # the id is free again: a new message under it is a new message
    events = feed(again, publish(3, 2, 2))
    assert [e.payload for e in events if isinstance(e, Publish)] == [b"3"]


def delivered(events: list[object]) -> list[bytes]:
    return [e.payload for e in events if isinstance(e, Publish)]


def completed_flow(
    version: ProtocolVersion, n: int = 5, packet_id: int = 5
) -> tuple[SessionState, MQTTConnection]:
    """A session that received QoS 2 message ``n`` under ``packet_id`` and sent its PUBCOMP."""
    session = SessionState()
    conn, _ = connected(session, version, present=False)
    assert delivered(feed(conn, publish(n, 2, packet_id))) == [b"%d" % n]
    conn.acknowledge(packet_id)
    feed(conn, PubRel(packet_id=packet_id))
    assert sent(conn) == [PubRec(packet_id=packet_id), PubComp(packet_id=packet_id)]
    return session, conn


@pytest.mark.parametrize("version", VERSIONS)
def test_a_released_qos2_message_resent_after_reconnect_is_not_delivered_again(
    version: ProtocolVersion,
) -> None:
    """Our PUBCOMP is lost with the connection and the server re-sends the PUBLISH it had already
    released (Mosquitto 2.0.11 after a restart, against section 4.3.3): the message is delivered
    once ([MQTT-4.3.3-9]'s exactly once); the flow is answered and completed again."""
    session, _ = completed_flow(version)
    again, _ = connected(session, version, present=True)
    assert delivered(feed(again, publish(5, 2, 5, dup=True))) == []
    assert sent(again) == [PubRec(packet_id=5)]
    feed(again, PubRel(packet_id=5))
    assert sent(again) == [PubComp(packet_id=5)]
    # and once more, on a third connection (our PUBCOMP lost again)
    third, _ = connected(session, version, present=True)
    assert delivered(feed(third, publish(5, 2, 5, dup=True))) == []


@pytest.mark.parametrize(
    "resend",
    [
        # DUP=0: a first attempt, so a new message ([MQTT-3.3.1-3])
        publish(5, 2, 5, dup=False),
        # other content: a new message whose first attempt was cut
        publish(6, 2, 5, dup=True),
        # same payload, other topic
        Publish(topic="u", payload=b"5", qos=2, packet_id=5, dup=True),
    ],
    ids=["dup0", "other-payload", "other-topic"],
)
@pytest.mark.parametrize("reconnect", [False, True])
def test_anything_else_under_a_released_id_is_a_new_message(
    resend: Publish, reconnect: bool
) -> None:
    session, conn = completed_flow(V5)
    if reconnect:
        conn, _ = connected(session, V5, present=True)
    assert delivered(feed(conn, resend)) == [resend.payload]
    assert len(session.released) == 0


def test_a_pubrel_resent_for_a_released_flow_is_completed_with_success() -> None:
    """The server did not get our PUBCOMP and sends PUBREL again: the flow is known, so PUBCOMP
    Success, not Packet Identifier Not Found ([MQTT-4.3.3-11])."""
    session, _ = completed_flow(V5)
    again, _ = connected(session, V5, present=True)
    feed(again, PubRel(packet_id=5))
    assert sent(again) == [PubComp(packet_id=5, reason_code=ReasonCode.SUCCESS)]
    feed(again, PubRel(packet_id=6))
    assert sent(again) == [
        PubComp(packet_id=6, reason_code=ReasonCode.PACKET_IDENTIFIER_NOT_FOUND)
    ]


def test_released_flows_are_forgotten_once_a_pingresp_confirms_them() -> None:
    """After CONFIRM_EVERY completions the connection sends PINGREQ; its PINGRESP proves the
    server processed the PUBCOMPs before it (TCP keeps order), so a DUP PUBLISH under one of
    those ids afterwards is a new message."""
    session = SessionState()
    conn, _ = connected(session, V5, present=False)
    for packet_id in range(1, CONFIRM_EVERY + 1):
        feed(conn, publish(packet_id, 2, packet_id))
        conn.acknowledge(packet_id)
        feed(conn, PubRel(packet_id=packet_id))
    out = sent(conn)
    assert out[-1] == PingReq()  # right after the CONFIRM_EVERY-th PUBCOMP
    assert out.count(PingReq()) == 1
    assert len(session.released) == CONFIRM_EVERY
    # one more completion while the PINGREQ is out: not covered by it
    feed(conn, publish(99, 2, 99))
    conn.acknowledge(99)
    feed(conn, PubRel(packet_id=99))
    assert PingReq() not in sent(conn)
    feed(conn, PingResp())
    assert list(session.released.entries) == [99]
    assert delivered(feed(conn, publish(1, 2, 1, dup=True))) == [b"1"]


def test_released_flows_beyond_our_receive_maximum_are_dropped_oldest_first() -> None:
    """The flows the server has not seen completed are the newest, at most Receive Maximum of
    them ([MQTT-3.3.4-9]): older ones need no memory."""
    session = SessionState()
    conn, _ = connected(session, V5, present=False, receive_maximum=3)
    for packet_id in range(1, 6):
        feed(conn, publish(packet_id, 2, packet_id))
        conn.acknowledge(packet_id)
        feed(conn, PubRel(packet_id=packet_id))
    assert list(session.released.entries) == [3, 4, 5]


def test_a_lost_session_forgets_released_flows() -> None:
    session, _ = completed_flow(V5)
    again, _ = connected(session, V5, present=False)
    assert len(session.released) == 0
    assert delivered(feed(again, publish(5, 2, 5, dup=True))) == [b"5"]


def test_receive_maximum_counts_an_acknowledged_qos2_message_once() -> None:
    """[MQTT-3.3.4-9] counts unacknowledged messages; one acknowledged but still waiting for its
    PUBREC to leave is one message, not two."""
    conn, _ = connected(SessionState(), present=False, receive_maximum=2)
    feed(conn, publish(1, 1, 1), publish(2, 2, 2))
    conn.acknowledge(2)
    feed(conn, publish(3, 1, 3))
    assert conn.receive_maximum_exceeded
    conn2, _ = connected(SessionState(), present=False, receive_maximum=3)
    feed(conn2, publish(1, 1, 1), publish(2, 2, 2))
    conn2.acknowledge(2)
    assert len(feed(conn2, publish(3, 1, 3))) == 1
    assert not conn2.receive_maximum_exceeded


def test_an_overrun_is_ended_after_the_batch_it_came_in() -> None:
    """Section 3.3.4: a server that sends more than our Receive Maximum gets DISCONNECT 0x93,
    but only after the batch is handed over, so what the client acknowledges for it (a
    redelivered message it already has) leaves before the DISCONNECT."""
    conn, _ = connected(SessionState(), present=False, receive_maximum=1)
    events = feed(conn, publish(1, 1, 1), publish(2, 1, 2))
    assert delivered(events) == [b"1", b"2"]
    assert conn.receive_maximum_exceeded
    conn.acknowledge(1)
    error = conn.end_overrun()
    assert error.reason_code is ReasonCode.RECEIVE_MAXIMUM_EXCEEDED
    assert sent(conn) == [
        PubAck(packet_id=1),
        Disconnect(reason_code=ReasonCode.RECEIVE_MAXIMUM_EXCEEDED),
    ]


def test_reconnect_policy_full_jitter_bounds() -> None:
    policy = ReconnectPolicy(initial_delay=0.5, max_delay=10, multiplier=3)
    top = 1 - 1e-12
    assert [round(policy.delay(a, lambda: top), 6) for a in range(1, 6)] == [
        0.5, 1.5, 4.5, 10.0, 10.0,
    ]  # fmt: skip
    assert policy.delay(3, lambda: 0.0) == 0.0
    assert policy.delay(10_000, lambda: top) == pytest.approx(10)  # no overflow
    rng = random.Random(1)
    delays = [policy.delay(4, rng.random) for _ in range(1000)]
    assert 0 <= min(delays) < 1  # spread over the whole range
    assert 9 < max(delays) <= 10
    with pytest.raises(ValueError):
        ReconnectPolicy(multiplier=0.5)


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("other.example", ("other.example", 8883)),
        ("other.example:1884", ("other.example", 1884)),
        ("[::1]:1999 backup:1", ("::1", 1999)),
        ("[::1]", ("::1", 8883)),
        ("", None),
        ("host:notaport", None),
        ("host:70000", None),
        # URL form, as the Eclipse Paho test broker sends it: host and port from the URL
        ("tcp://other.example:1885", ("other.example", 1885)),
        ("mqtt://other.example:1886 backup:1", ("other.example", 1886)),
        ("mqtts://[::1]:1999", ("::1", 1999)),
        ("tcp://", None),
    ],
)
def test_server_reference(reference: str, expected: tuple[str, int] | None) -> None:
    """Section 4.11: the first of a space-separated list; the transport (TLS here) is kept."""
    current = Endpoint.from_url("mqtts://broker.example")
    got = parse_server_reference(reference, current)
    if expected is None:
        assert got is None
    else:
        assert got is not None
        assert (got.host, got.port, got.tls) == (*expected, True)


@pytest.mark.parametrize("version", VERSIONS)
def test_sqlite_store_round_trip(tmp_path: Path, version: ProtocolVersion) -> None:
    """What a process leaves in the store, the next one resumes: order, PUBREL in place of its
    PUBLISH, inbound QoS 2 ids, reserved packet ids; other client ids are untouched."""
    path = tmp_path / "session.db"
    store = SQLiteSessionStore(path)
    session = open_session(store, "c", version)
    conn, _ = connected(session, version, present=False)
    ids = [conn.publish("t", b"%d" % n, qos=1 + n % 2) for n in range(4)]
    feed(conn, PubAck(packet_id=ids[0]), PubRec(packet_id=ids[1]))
    feed(conn, publish(5, 2, 40))
    conn.acknowledge(40)
    conn.data_to_send(now=0)
    store.flush()  # what the client does before each network write
    conn.publish("t", b"never flushed", qos=1)
    store._db.close()  # the process dies: no flush, the open transaction is lost

    restored = SQLiteSessionStore(path)
    state = open_session(restored, "c", version)
    assert list(state.outbound) == ids[1:]
    assert state.outbound[ids[1]] == PubRel(packet_id=ids[1])
    assert [p.payload for p in state.outbound.values() if isinstance(p, Publish)] == [
        b"2",
        b"3",
    ]
    assert state.inbound_qos2 == {40}
    assert all(state.packet_ids.in_use(i) for i in ids[1:])
    _, resent = connected(state, version, present=True)
    assert [p.packet_id for p in resent] == ids[1:]
    restored.close()

    elsewhere = SQLiteSessionStore(
        path
    )  # another client id in the same file: its own session
    nothing = elsewhere.load("someone-else", version)
    assert (
        nothing.outbound,
        set(nothing.inbound),
        nothing.released,
        nothing.queued,
    ) == ([], set(), [], [])
    elsewhere.close()


def test_an_overdue_pingresp_is_not_held_against_the_broker_while_not_reading() -> None:
    """Keep alive (section 3.1.2.10): PINGREQ after keep alive idle ([MQTT-3.1.2-20]); no
    PINGRESP within half the interval ends the connection, unless the I/O layer is not reading
    (backpressure), when the answer may be waiting unread: then PINGREQ goes on every
    interval ([MQTT-3.1.2-24] keeps the broker from closing) and nothing expires."""

    def drain(conn: MQTTConnection, now: float) -> list[Packet]:
        return PacketReader(version=conn.version).feed(conn.data_to_send(now=now))

    conn, _ = connected(SessionState())
    assert conn.next_deadline() == 60
    assert conn.handle_timeout(now=60) == []
    assert drain(conn, 60) == [PingReq()]
    assert conn.next_deadline() == 90  # the PINGRESP is due
    assert conn.handle_timeout(now=90, reading=False) == []
    assert drain(conn, 90) == []  # overdue, not held against the broker; no PINGREQ yet
    assert conn.next_deadline() == 120
    assert conn.handle_timeout(now=120, reading=False) == []
    assert drain(conn, 120) == [PingReq()]
    # reading again, the broker's answers arrive; had they not, it would have been dead
    conn.receive_data(encode_packet(PingResp(), conn.version) * 2, now=120)  # at t=120
    assert conn.next_deadline() == 180
    assert conn.handle_timeout(now=180) == []
    assert drain(conn, 180) == [PingReq()]
    assert [type(e).__name__ for e in conn.handle_timeout(now=210)] == [
        "KeepAliveExpired"
    ]


def test_keep_alive_counts_silence_from_the_broker_too() -> None:
    """A client that keeps sending has no idle time in which [MQTT-3.1.2-20] asks for a
    PINGREQ; it pings anyway once nothing was received for a keep alive interval, so a
    silent broker is found within 1.5x keep alive of its last packet (section 3.1.2.10)."""
    conn, _ = connected(SessionState())  # keep alive 60 s, CONNACK at 0
    for now in range(5, 60, 5):
        conn.publish("t", b"x")
        conn.data_to_send(now=now)  # sending every 5 s
        assert conn.handle_timeout(now=now) == []
    assert conn.next_deadline() == 60  # 60 s after the last packet received
    assert conn.handle_timeout(now=60) == []
    assert PacketReader(version=conn.version).feed(conn.data_to_send(now=60)) == [
        PingReq()
    ]
    assert [type(e).__name__ for e in conn.handle_timeout(now=90)] == [
        "KeepAliveExpired"
    ]


def test_a_large_session_is_resent_a_chunk_at_a_time() -> None:
    """[MQTT-4.4.0-1] resends every unacknowledged PUBLISH, in order; 200 messages of 10 KB
    are encoded a chunk (RESEND_CHUNK, 256 KiB) ahead of the network, not 2 MB at once:
    each data_to_send() hands over about a chunk and encodes the next."""
    from trio_mqtt._sansio._connection import RESEND_CHUNK

    session = SessionState()
    for n in range(1, 201):
        session.store_outbound(
            n, Publish(topic="t", payload=bytes(10_000), qos=1, packet_id=n)
        )
    conn = MQTTConnection(version=V5, session=session)
    conn.connect(Connect(protocol_version=V5, client_id="c", clean_start=False), now=0)
    conn.data_to_send(now=0)
    conn.receive_data(encode_packet(ConnAck(session_present=True), V5), now=0)
    resent: list[Packet] = []
    while conn.has_data_to_send:
        data = conn.data_to_send(now=0)
        assert (
            len(data) <= RESEND_CHUNK + 10_100
        )  # the chunk, and the packet that filled it
        resent += PacketReader(version=V5).feed(data)
    assert [(p.packet_id, p.dup) for p in resent] == [(n, True) for n in range(1, 201)]  # type: ignore[attr-defined]


class _DictStore(SessionStore):
    """A store written from SessionStore's public contract alone (as a Redis store would be):
    one dict per client id, standing in for the backend."""

    def __init__(self, backend: dict[str, dict[str, dict[int, object]]]) -> None:
        self.backend = backend

    def load(self, client_id: str, protocol: ProtocolVersion) -> SavedSession:
        self.mine = self.backend.setdefault(
            client_id, {"outbound": {}, "inbound": {}, "released": {}, "queued": {}}
        )
        m = self.mine
        return SavedSession(
            outbound=list(m["outbound"].items()),  # type: ignore[arg-type]
            inbound=list(m["inbound"]),
            released=list(m["released"].items()),  # type: ignore[arg-type]
            queued=list(m["queued"].items()),  # type: ignore[arg-type]
        )

    def outbound_stored(self, packet_id: int, packet: Publish | PubRel) -> None:
        self.mine["outbound"][packet_id] = packet

    def outbound_removed(self, packet_id: int) -> None:
        del self.mine["outbound"][packet_id]

    def inbound_added(self, packet_id: int) -> None:
        self.mine["inbound"][packet_id] = True

    def inbound_removed(self, packet_id: int) -> None:
        self.mine["inbound"].pop(packet_id, None)

    def cleared(self) -> None:
        for part in self.mine.values():
            part.clear()

    def released_added(self, packet_id: int, fingerprint: int | None) -> None:
        self.mine["released"][packet_id] = fingerprint

    def released_removed(self, packet_ids: list[int]) -> None:
        for packet_id in packet_ids:
            self.mine["released"].pop(packet_id, None)

    def queued_added(self, key: int, packet: Publish) -> None:
        self.mine["queued"][key] = packet

    def queued_removed(self, key: int) -> None:
        del self.mine["queued"][key]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_store_written_from_the_public_contract_resumes_a_session(
    version: ProtocolVersion,
) -> None:
    backend: dict[str, dict[str, dict[int, object]]] = {}
    session = open_session(_DictStore(backend), "c", version)
    conn, _ = connected(session, version, present=False)
    ids = [conn.publish("t", b"%d" % n, qos=1) for n in range(3)]
    feed(conn, PubAck(packet_id=ids[0]))
    resumed = open_session(_DictStore(backend), "c", version)  # a new process
    _, resent = connected(resumed, version, present=True)
    assert [(p.packet_id, p.payload, p.dup) for p in resent] == [  # [MQTT-4.4.0-1]
        (ids[1], b"1", True),
        (ids[2], b"2", True),
    ]
