"""The code of docs/operating.md, run against a broker by the suite (``# [name]`` fragments
are shown on the page by ``literalinclude``)."""

from __future__ import annotations

import logging
import sys
from collections import Counter

import trio

import trio_mqtt

log = logging.getLogger("myapp")


async def log_statistics(client: trio_mqtt.MQTTClient, every: float) -> None:
    # [statistics]
    while True:
        stats = client.statistics()   # a snapshot: cheap, no I/O
        log.info(
            "sent %d received %d in flight %d queued %d p99 ack %s s losses %s",
            stats.messages_sent.total, stats.messages_received.total,
            stats.publishes_in_flight, stats.offline_queue_messages,
            stats.ack_latency.quantile(0.99), dict(stats.connection_losses),
        )
        await trio.sleep(every)
    # [/statistics]


# [hooks]
class Metrics(trio_mqtt.ClientHooks):
    """Counts what happens; a real one would feed StatsD, Prometheus, ..."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.slow_acks = 0

    def on_disconnected(self, change: trio_mqtt.Disconnected) -> None:
        self.counts[f"lost: {type(change.cause).__name__}"] += 1

    def on_publish_acknowledged(self, topic: str, qos: trio_mqtt.QoS,
                                reason_code: trio_mqtt.ReasonCode, latency: float) -> None:
        self.counts["acknowledged" if not reason_code.is_failure else "refused"] += 1
        if latency > 0.5:
            self.slow_acks += 1

    def on_message_received(self, message: trio_mqtt.Message) -> None:
        self.counts[f"received on {message.topic.split('/')[0]}"] += 1
# [/hooks]


async def with_hooks(url: str) -> Metrics:
    # [use-hooks]
    metrics = Metrics()
    async with trio_mqtt.open_client(url, hooks=metrics) as client:
        async with client.subscribe("plant/#", qos=1) as messages:
            await client.publish("plant/line-1/temp", b"21.5", qos=1)
            await messages.receive()
    # [/use-hooks]
    return metrics


async def with_opentelemetry(url: str) -> list[str]:
    # [otel]
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from trio_mqtt.otel import OpenTelemetryHooks

    reader = InMemoryMetricReader()  # in production: a PeriodicExportingMetricReader(OTLP...)
    provider = MeterProvider(metric_readers=[reader])
    hooks = OpenTelemetryHooks(provider, destination_name=lambda topic: topic.split("/")[0])
    async with trio_mqtt.open_client(url, hooks=hooks) as client:
        await client.publish("plant/line-1/temp", b"21.5", qos=1)
        data = reader.get_metrics_data()
    # [/otel]
    provider.shutdown()
    assert data is not None
    return [m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]


# [prometheus]
def prometheus_text(client: trio_mqtt.MQTTClient) -> str:
    """The client's statistics in Prometheus' text format."""
    s = client.statistics()
    lines = []

    def metric(name: str, kind: str, text: str, *samples: tuple[str, float]) -> None:
        lines.extend([f"# HELP {name} {text}", f"# TYPE {name} {kind}"])
        lines.extend(f"{name}{labels} {value}" for labels, value in samples)

    metric("mqtt_messages_sent_total", "counter", "PUBLISH packets sent.",
           *((f'{{qos="{q}"}}', s.messages_sent[q]) for q in range(3)))
    metric("mqtt_messages_received_total", "counter", "PUBLISH packets received.",
           *((f'{{qos="{q}"}}', s.messages_received[q]) for q in range(3)))
    metric("mqtt_publishes_in_flight", "gauge", "QoS 1/2 publishes unacknowledged.",
           ("", s.publishes_in_flight))
    metric("mqtt_offline_queue_messages", "gauge", "Publishes waiting to be sent.",
           ("", s.offline_queue_messages))
    metric("mqtt_connection_losses_total", "counter", "Connections lost, by cause.",
           *((f'{{cause="{cause}"}}', n) for cause, n in s.connection_losses.items()))
    metric("mqtt_qos0_dropped_total", "counter", "QoS 0 messages lost with a connection.",
           ("", s.qos0_dropped))
    h, cumulative = s.ack_latency, 0
    buckets = []
    for bound, count in zip((*h.bounds, "+Inf"), h.counts, strict=True):
        cumulative += count
        buckets.append((f'_bucket{{le="{bound}"}}', cumulative))
    lines += ["# HELP mqtt_ack_latency_seconds Broker acknowledgement latency.",
              "# TYPE mqtt_ack_latency_seconds histogram"]
    lines += [f"mqtt_ack_latency_seconds{suffix} {n}" for suffix, n in buckets]
    lines += [f"mqtt_ack_latency_seconds_sum {h.sum}", f"mqtt_ack_latency_seconds_count {h.count}"]
    return "\n".join(lines) + "\n"


async def serve_metrics(client: trio_mqtt.MQTTClient, port: int,
                        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Answer every HTTP request on ``port`` with the metrics (a scrape target)."""
    async def answer(stream: trio.SocketStream) -> None:
        await stream.receive_some(65536)  # the request: one path, one answer
        body = prometheus_text(client).encode()
        await stream.send_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        await stream.aclose()

    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(answer, listeners)
# [/prometheus]


async def scrape(port: int) -> str:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b"GET /metrics HTTP/1.0\r\n\r\n")
        response = b""
        while data := await stream.receive_some():
            response += data
    return response.decode()


async def main(url: str) -> None:
    metrics = await with_hooks(url)
    assert metrics.counts["acknowledged"] == 1, metrics.counts
    assert metrics.counts["received on plant"] == 1, metrics.counts

    names = await with_opentelemetry(url)
    assert "messaging.client.sent.messages" in names, names
    assert "messaging.client.operation.duration" in names, names

    with trio.fail_after(10):
        async with trio_mqtt.open_client(url) as client, trio.open_nursery() as nursery:
            nursery.start_soon(log_statistics, client, 0.01)
            for n in range(3):
                await client.publish("plant/line-2/temp", b"%d" % n, qos=1)
            port = await nursery.start(serve_metrics, client, 0)
            text = await scrape(port)
            nursery.cancel_scope.cancel()
    assert text.startswith("HTTP/1.0 200 OK"), text
    assert 'mqtt_messages_sent_total{qos="1"} 3' in text, text
    assert 'mqtt_ack_latency_seconds_bucket{le="+Inf"} 3' in text, text
    assert "mqtt_ack_latency_seconds_count 3" in text, text
    print("done")


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "mqtt://localhost:1883")
