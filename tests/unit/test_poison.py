"""Which request made the broker end a connection, and when it is poison (sans I/O): the
machine's suspects, and the strike count across consecutive connections."""

from __future__ import annotations

import pytest

from tests.unit.test_session import connected, feed
from trio_mqtt import ConnectionLostError, QoS, ReasonCode, RemoteProtocolError
from trio_mqtt._sansio._packets import PubAck, SubscriptionRequest
from trio_mqtt._sansio._poison import (
    NAMED_STRIKES,
    STRIKES,
    Strikes,
    Suspect,
    ended_by_broker,
)
from trio_mqtt._sansio._session import SessionState


def test_the_flow_a_wrong_acknowledgement_names_is_the_only_suspect() -> None:
    """PUBACK to a QoS 2 PUBLISH (RabbitMQ): a protocol error naming that flow."""
    conn, _ = connected(SessionState())
    conn.publish("a", b"1", qos=QoS.AT_LEAST_ONCE)
    qos2 = conn.publish("b", b"2", qos=QoS.EXACTLY_ONCE)
    assert qos2 is not None
    with pytest.raises(RemoteProtocolError):
        feed(conn, PubAck(packet_id=qos2))
    assert conn.suspects() == [Suspect("PUBLISH", qos2, named=True)]


def test_the_oldest_unanswered_flow_and_request_are_the_suspects() -> None:
    conn, _ = connected(SessionState())
    first = conn.publish("a", b"1", qos=QoS.AT_LEAST_ONCE)
    second = conn.publish("a", b"2", qos=QoS.AT_LEAST_ONCE)
    request = conn.subscribe([SubscriptionRequest(topic_filter="x/#")])
    assert first is not None
    assert second is not None
    feed(conn, PubAck(packet_id=first))
    assert conn.suspects() == [
        Suspect("PUBLISH", second),
        Suspect("SUBSCRIBE", request, ("x/#",)),
    ]


def test_a_flow_not_yet_resent_is_no_suspect() -> None:
    """After CONNACK the session's flows are resent as the broker's Receive Maximum allows:
    one still waiting to be resent cannot have killed the connection."""
    session = SessionState()
    conn, _ = connected(session)
    first = conn.publish("a", b"1", qos=QoS.AT_LEAST_ONCE)
    second = conn.publish("a", b"2", qos=QoS.AT_LEAST_ONCE)
    conn.connection_lost()
    again, resent = connected(session, server_receive_maximum=1)
    assert [p.packet_id for p in resent] == [first]  # type: ignore[attr-defined]
    assert again.suspects() == [Suspect("PUBLISH", first)]  # type: ignore[arg-type]
    feed(again, PubAck(packet_id=first))  # type: ignore[arg-type]
    assert again.suspects() == [Suspect("PUBLISH", second)]  # type: ignore[arg-type]


def test_strikes_need_consecutive_connections() -> None:
    strikes = Strikes()
    named = Suspect("PUBLISH", 7, named=True)
    assert NAMED_STRIKES == 2
    assert STRIKES == 3
    assert strikes.ended([named]) == []
    assert strikes.ended([named]) == [named]  # the second named end in a row
    plain = Suspect("SUBSCRIBE", 3, ("x/#",))
    renewed = Suspect("SUBSCRIBE", 9, ("x/#",))  # asked again under a new packet id
    assert strikes.ended([plain]) == []
    assert strikes.ended([renewed]) == []
    strikes.clear()  # a connection that ended otherwise: start over
    assert strikes.ended([plain]) == []
    assert strikes.ended([]) == []  # a connection it was no suspect of: start over
    assert strikes.ended([plain]) == []
    assert strikes.ended([plain]) == []
    assert strikes.ended([renewed]) == [renewed]


def test_unnamed_strikes_must_span_the_window_named_ones_need_not() -> None:
    """A plain close fails a request only when STRIKES of them in a row span ``window``
    seconds (a cluster electing leaders closes for a while); a named one at once."""
    strikes = Strikes()
    plain = Suspect("PUBLISH", 5)
    assert strikes.ended([plain], now=100.0, window=30.0) == []
    assert strikes.ended([plain], now=101.0, window=30.0) == []
    assert strikes.ended([plain], now=102.0, window=30.0) == []  # 3 in 2 s: not yet
    assert strikes.ended([plain], now=129.9, window=30.0) == []
    assert strikes.ended([plain], now=130.0, window=30.0) == [
        plain
    ]  # 30 s after the first
    named = Suspect("PUBLISH", 6, named=True)
    assert strikes.ended([named], now=200.0, window=30.0) == []
    assert strikes.ended([named], now=200.5, window=30.0) == [named]
    strikes.ended([plain], now=300.0, window=30.0)
    strikes.clear()  # a connection that ended otherwise: the window starts over too
    assert strikes.ended([plain], now=400.0, window=30.0) == []
    assert strikes.ended([plain], now=401.0, window=30.0) == []
    assert strikes.ended([plain], now=402.0, window=30.0) == []


def test_one_poison_per_end_and_the_other_suspects_start_over() -> None:
    """The session's resent PUBLISH and the SUBSCRIBE renewed after it are suspects of the
    same ends; the first is poison, and the SUBSCRIBE is not failed with it."""
    strikes = Strikes()
    publish, subscribe = Suspect("PUBLISH", 2), Suspect("SUBSCRIBE", 9, ("t/#",))
    assert strikes.ended([publish, subscribe], now=0.0, window=1.0) == []
    assert strikes.ended([publish, subscribe], now=0.5, window=1.0) == []
    assert strikes.ended([publish, subscribe], now=1.0, window=1.0) == [publish]
    assert strikes.counts == {}
    assert strikes.ended([subscribe], now=1.5, window=1.0) == []  # counted from 1 again


@pytest.mark.parametrize(
    ("error", "timed_out", "counts"),
    [
        (RemoteProtocolError("PUBACK for a QoS 2 PUBLISH"), False, True),
        (ConnectionLostError("the broker closed the connection"), False, True),
        (
            ConnectionLostError("x", reason_code=ReasonCode.QOS_NOT_SUPPORTED),
            False,
            True,
        ),
        (
            ConnectionLostError("x", reason_code=ReasonCode.SESSION_TAKEN_OVER),
            False,
            False,
        ),
        (
            ConnectionLostError("x", reason_code=ReasonCode.SERVER_SHUTTING_DOWN),
            False,
            False,
        ),
        (ConnectionLostError("no PINGRESP"), True, False),
    ],
)
def test_what_counts_as_the_broker_ending_the_connection(
    error: Exception, timed_out: bool, counts: bool
) -> None:
    assert ended_by_broker(error, timed_out=timed_out) is counts  # type: ignore[arg-type]
