"""trio_mqtt.otel against a real Mosquitto, read back through the OpenTelemetry SDK's
in-memory reader: what an exporter would see."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import trio
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import trio_mqtt
from tests.integration.test_client import unique
from tests.mosquitto import Mosquitto
from tests.proxy import client_behind_proxy
from trio_mqtt import PublishError, ReasonCode
from trio_mqtt.otel import OpenTelemetryHooks


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def provider(reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    provider = MeterProvider(metric_readers=[reader])
    yield provider
    provider.shutdown()


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """Every data point collected now, by metric name."""
    found: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def value(
    found: dict[str, list[Any]], name: str, client_id: str, **attributes: str | int
) -> int | None:
    """The value of ``name``'s one point for ``client_id`` with these attributes (keys with
    dots for underscores, but ``topic_filter``), None if there is none."""
    wanted = {k.replace("_", ".").replace("topic.filter", "topic_filter"): v
              for k, v in attributes.items()}  # fmt: skip
    wanted["messaging.client.id"] = client_id
    matching = [
        p.value
        for p in found.get(name, [])
        if all(p.attributes.get(k) == v for k, v in wanted.items())
    ]
    assert len(matching) <= 1, matching
    return matching[0] if matching else None


async def test_two_clients_are_reported_under_the_messaging_conventions(
    mosquitto: Mosquitto, reader: InMemoryMetricReader, provider: MeterProvider
) -> None:
    topic = unique("otel")
    hooks = OpenTelemetryHooks(provider, destination_name=lambda t: t.split("-")[0])
    with trio.fail_after(10):
        async with (
            trio_mqtt.open_client(mosquitto.url, hooks=hooks) as subscriber,
            subscriber.subscribe(topic, qos=1) as messages,
        ):
            async with trio_mqtt.open_client(mosquitto.url, hooks=hooks) as publisher:
                for qos in (1, 1, 1, 0, 0):
                    await publisher.publish(topic, b"m", qos=qos)
                for _ in range(5):
                    await messages.receive()
                found = points(reader)
                a, b = publisher.client_id, subscriber.client_id
                sent = "messaging.client.sent.messages"
                consumed = "messaging.client.consumed.messages"
                assert value(found, sent, client_id=a, mqtt_qos=1) == 3
                assert value(found, sent, client_id=a, mqtt_qos=0) == 2
                assert value(found, sent, client_id=b, mqtt_qos=1) == 0
                assert value(found, consumed, client_id=b, mqtt_qos=1) == 3
                assert value(found, consumed, client_id=b, mqtt_qos=0) == 2
                for point in found[sent]:
                    assert point.attributes["messaging.system"] == "mqtt"
                    assert point.attributes["server.address"] == "127.0.0.1"
                    assert point.attributes["server.port"] == mosquitto.port
                assert value(found, "mqtt.client.connections", client_id=a) == 1
                io = value(
                    found, "mqtt.client.io", client_id=a,
                    network_io_direction="transmit",
                )  # fmt: skip
                assert io == publisher.statistics().bytes_sent
                assert (
                    value(
                        found, "mqtt.client.subscription.buffered",
                        client_id=b, mqtt_topic_filter=topic,
                    )
                    == 0
                )  # fmt: skip
                assert set(found) == {
                    "messaging.client.sent.messages",
                    "messaging.client.consumed.messages",
                    "messaging.client.operation.duration",
                    "mqtt.client.io",
                    "mqtt.client.connections",
                    "mqtt.client.failed_attempts",
                    "mqtt.client.qos0_dropped",
                    "mqtt.client.publishes_in_flight",
                    "mqtt.client.offline_queue.messages",
                    "mqtt.client.offline_queue.size",
                    "mqtt.client.subscription.buffered",
                    # mqtt.client.connection_losses has no point before a loss (below)
                }
                [duration] = found["messaging.client.operation.duration"]
                assert duration.count == 3
                assert duration.sum > 0
                assert duration.attributes == {
                    "messaging.system": "mqtt",
                    "messaging.operation.name": "publish",
                    "messaging.operation.type": "send",
                    "mqtt.qos": 1,
                    "messaging.destination.name": "otel",
                }
            # a closed client is no longer observed
            found = points(reader)
            ids = {p.attributes["messaging.client.id"] for p in found[sent]}
            assert ids == {subscriber.client_id}


async def test_a_refused_publish_is_recorded_with_its_reason_code(
    mosquitto_acl: Mosquitto, reader: InMemoryMetricReader, provider: MeterProvider
) -> None:
    """Mosquitto's ACL answers PUBACK 0x87: the duration carries error.type."""
    hooks = OpenTelemetryHooks(provider)
    with trio.fail_after(10):
        async with trio_mqtt.open_client(
            mosquitto_acl.url, username="alice", password="wonderland", hooks=hooks
        ) as client:
            await client.publish("ok/x", b"fine", qos=1)
            with pytest.raises(PublishError) as refused:
                await client.publish("denied/x", b"no", qos=1)
            assert refused.value.reason_code is ReasonCode.NOT_AUTHORIZED
            durations = points(reader)["messaging.client.operation.duration"]
    assert sorted((p.attributes.get("error.type", ""), p.count) for p in durations) == [
        ("", 1),
        ("NOT_AUTHORIZED", 1),
    ]


def test_destination_name_must_be_callable() -> None:
    with pytest.raises(TypeError, match="destination_name"):
        OpenTelemetryHooks(destination_name="topic")  # type: ignore[arg-type]


async def test_the_latency_histogram_can_be_left_off(
    mosquitto: Mosquitto, reader: InMemoryMetricReader, provider: MeterProvider
) -> None:
    """record_latency=False: no histogram recording per acknowledgement (the SDK's cost);
    the counters are still observed, and the client's own histogram still counts."""
    hooks = OpenTelemetryHooks(provider, record_latency=False)
    with trio.fail_after(10):
        async with trio_mqtt.open_client(mosquitto.url, hooks=hooks) as client:
            for _ in range(2):
                await client.publish(unique("nolat"), b"m", qos=1)
            found = points(reader)
            assert client.statistics().ack_latency.count == 2
    assert found.get("messaging.client.operation.duration", []) == []
    sent = "messaging.client.sent.messages"
    assert value(found, sent, client.client_id, mqtt_qos=1) == 2


async def test_a_lost_connection_is_reported_by_its_cause(
    mosquitto: Mosquitto, reader: InMemoryMetricReader, provider: MeterProvider
) -> None:
    hooks = OpenTelemetryHooks(provider)
    policy = trio_mqtt.ReconnectPolicy(initial_delay=0.05, max_delay=0.2)
    with trio.fail_after(10):
        async with client_behind_proxy(
            mosquitto.port, reconnect=policy, hooks=hooks
        ) as (proxy, client):
            with client.watch_state() as changes:
                await anext(changes)  # Connected
                proxy.cut()
                async for change in changes:
                    if isinstance(change, trio_mqtt.Connected):
                        break
            found = points(reader)
            losses = "mqtt.client.connection_losses"
            assert (
                value(found, losses, client.client_id, error_type="ConnectionLostError")
                == 1
            )
            assert value(found, "mqtt.client.connections", client.client_id) == 2
