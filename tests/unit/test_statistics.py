"""The statistics' value types, and the protocol machine's traffic counters (sans-IO: bytes
in, bytes out, and what a lost connection drops)."""

from __future__ import annotations

import math

import pytest

from tests import wire
from trio_mqtt import CountsByQoS, LatencyHistogram, QoS
from trio_mqtt._sansio._connection import MQTTConnection
from trio_mqtt.lowlevel import Connect


def test_counts_by_qos_index_and_total() -> None:
    counts = CountsByQoS(qos0=1, qos1=2, qos2=3)
    assert [counts[q] for q in QoS] == [1, 2, 3]
    assert counts[2] == 3
    assert counts.total == 6
    with pytest.raises(IndexError, match="no QoS level 3"):
        counts[3]


def test_latency_quantiles_are_bucket_bounds() -> None:
    assert LatencyHistogram().quantile(0.5) is None
    assert LatencyHistogram().mean is None
    bounds = LatencyHistogram().bounds
    counts = [0] * (len(bounds) + 1)
    counts[0], counts[4], counts[-1] = 90, 9, 1  # <= 0.5 ms, <= 10 ms, > 10 s
    histogram = LatencyHistogram(counts=tuple(counts), count=100, sum=12.0)
    assert histogram.quantile(0.5) == bounds[0]
    assert histogram.quantile(0.9) == bounds[0]
    assert histogram.quantile(0.95) == bounds[4]
    assert histogram.quantile(1.0) == math.inf
    assert histogram.mean == pytest.approx(0.12)
    with pytest.raises(ValueError, match="between 0 and 1"):
        histogram.quantile(1.5)


def connected() -> MQTTConnection:
    conn = MQTTConnection()
    conn.connect(Connect(client_id="c"), now=0.0)
    conn.receive_data(wire.connack(), now=0.0)
    return conn


def test_the_machine_counts_bytes_and_publishes_both_ways() -> None:
    conn = MQTTConnection()
    conn.connect(Connect(client_id="c"), now=0.0)
    connect = conn.data_to_send(now=0.0)
    conn.receive_data(wire.connack(), now=0.0)
    conn.publish("t", b"a")
    conn.publish("t", b"b", qos=QoS.AT_LEAST_ONCE)
    out = conn.data_to_send(now=0.0)
    incoming = wire.publish("t", b"x") + wire.publish("t", b"y", qos=2, packet_id=7)
    conn.receive_data(incoming, now=0.0)
    traffic = conn.traffic
    assert traffic.bytes_sent == len(connect) + len(out)
    assert traffic.bytes_received == len(wire.connack()) + len(incoming)
    assert traffic.sent_by_qos() == (1, 1, 0)
    assert traffic.received_by_qos() == (1, 0, 1)


def test_qos0_messages_queued_or_unconfirmed_at_a_loss_are_dropped() -> None:
    conn = connected()
    conn.data_to_send(now=0.0)  # the CONNECT
    conn.data_written()
    conn.publish("t", b"1")
    conn.publish("t", b"2")
    conn.data_to_send(now=0.0)  # taken by a write...
    conn.data_written()  # ...that finished: those two reached the network
    conn.publish("t", b"3")
    conn.data_to_send(now=0.0)  # taken by a write that never finishes
    conn.publish("t", b"4")  # still queued
    conn.publish("t", b"5", qos=QoS.AT_LEAST_ONCE)  # not QoS 0: the session resends it
    conn.connection_lost()
    assert conn.traffic.qos0_dropped == 2
    conn.connection_lost()  # idempotent
    assert conn.traffic.qos0_dropped == 2
