"""OpenTelemetry metrics for trio-mqtt clients: ``pip install trio-mqtt[otel]``.

:class:`OpenTelemetryHooks` is a :class:`~trio_mqtt.ClientHooks` that reports what
:meth:`~trio_mqtt.MQTTClient.statistics` counts through the OpenTelemetry metrics API
(``opentelemetry-api`` only: the application chooses the SDK and exporter), under the
semantic conventions' messaging names where they exist:

- ``messaging.client.sent.messages`` and ``messaging.client.consumed.messages``
  (counters, by ``mqtt.qos``);
- ``messaging.client.operation.duration`` (histogram, seconds): the broker's acknowledgement
  latency of QoS 1/2 publishes, with ``error.type`` set to the reason code's name when the
  broker refused;

and under ``mqtt.client.*`` where they do not:

- ``mqtt.client.io`` (bytes, by ``network.io.direction``);
- ``mqtt.client.publishes_in_flight``, ``mqtt.client.offline_queue.messages``,
  ``mqtt.client.offline_queue.size`` and ``mqtt.client.subscription.buffered`` (gauges, as
  up-down counters);
- ``mqtt.client.connections``, ``mqtt.client.failed_attempts``, ``mqtt.client.qos0_dropped``
  and ``mqtt.client.connection_losses`` (counters; losses by ``error.type``, the cause's
  :attr:`~trio_mqtt.ClientStatistics.connection_losses` label).

Every point carries ``messaging.system`` (``mqtt``), ``messaging.client.id``,
``server.address`` and ``server.port``. Only the histogram is recorded as events happen (one
hook call per acknowledgement); everything else is read from the clients' statistics when the
SDK collects, so it costs nothing between collections.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable, Iterable

from ._client import MQTTClient
from ._enums import QoS, ReasonCode
from ._hooks import ClientHooks
from ._statistics import LATENCY_BOUNDS, ClientStatistics, CountsByQoS
from ._version import __version__

try:
    from opentelemetry import metrics
    from opentelemetry.metrics import CallbackOptions, Observation
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "trio_mqtt.otel needs opentelemetry-api: pip install 'trio-mqtt[otel]'"
    ) from exc

__all__ = ["OpenTelemetryHooks"]

_Attributes = dict[str, str | int]
_Read = Callable[[ClientStatistics], Iterable[tuple[int, _Attributes]]]

#: How long one collection's statistics are reused across the instruments, in seconds.
_SNAPSHOT_REUSE = 0.5


class OpenTelemetryHooks(ClientHooks):
    """Reports the metrics of every client opened with it (``open_client(hooks=...)``) through
    OpenTelemetry. One instance serves any number of clients.

    Args:
        meter_provider: where the instruments are made (``None``: the global one, as set by
            ``opentelemetry.metrics.set_meter_provider``).
        destination_name: maps a topic to the ``messaging.destination.name`` of its
            acknowledgement latency, e.g. ``lambda topic: topic.split("/")[0]``. Keep the
            result's values few (each is a time series); ``None`` (default) leaves the
            attribute out, as for the counters, which have no topic.
        record_latency: record each acknowledgement in
            ``messaging.client.operation.duration`` (default). The SDK's histogram costs
            about 10 µs per recording; a publisher of tens of thousands of QoS 1 messages a
            second may turn it off and read :attr:`~trio_mqtt.ClientStatistics.ack_latency`
            instead, which the client keeps anyway.

    Raises:
        TypeError: ``destination_name`` is not callable.
    """

    def __init__(
        self,
        meter_provider: metrics.MeterProvider | None = None,
        *,
        destination_name: Callable[[str], str] | None = None,
        record_latency: bool = True,
    ) -> None:
        if destination_name is not None and not callable(destination_name):
            raise TypeError("destination_name must be a callable: topic -> name")
        provider = meter_provider or metrics.get_meter_provider()
        meter = provider.get_meter("trio_mqtt", __version__)
        self._destination_name = destination_name
        self._record_latency = record_latency
        self._attributes: dict[tuple[int, str | None, str | None], _Attributes] = {}
        self._clients: dict[MQTTClient, _Attributes] = {}
        # the snapshot, shared by the collector's callbacks (never taken by the hooks)
        self._lock = threading.Lock()
        self._snapshot: list[tuple[ClientStatistics, _Attributes]] = []
        self._taken = -math.inf  # when _snapshot was taken (time.monotonic)
        self._generation = 0  # changes when a client comes or goes
        self._snapshot_generation = -1
        self._duration = meter.create_histogram(
            "messaging.client.operation.duration", unit="s",
            description="Time from a QoS 1/2 PUBLISH handed to the connection to the "
            "broker's PUBACK or PUBCOMP.",
            explicit_bucket_boundaries_advisory=LATENCY_BOUNDS,
        )  # fmt: skip

        def counter(name: str, unit: str, description: str, read: _Read) -> None:
            meter.create_observable_counter(
                name, [self._callback(read)], unit=unit, description=description
            )

        def gauge(name: str, unit: str, description: str, read: _Read) -> None:
            meter.create_observable_up_down_counter(
                name, [self._callback(read)], unit=unit, description=description
            )

        counter(
            "messaging.client.sent.messages", "{message}",
            "PUBLISH packets handed to a connection (first sends).",
            lambda s: _by_qos(s.messages_sent, "publish"),
        )  # fmt: skip
        counter(
            "messaging.client.consumed.messages", "{message}",
            "PUBLISH packets received from the broker.",
            lambda s: _by_qos(s.messages_received, "receive"),
        )  # fmt: skip
        counter(
            "mqtt.client.io", "By", "MQTT bytes sent and received.",
            lambda s: (
                (s.bytes_sent, {"network.io.direction": "transmit"}),
                (s.bytes_received, {"network.io.direction": "receive"}),
            ),
        )  # fmt: skip
        for make, name, unit, description, field in _ONE_VALUE:
            read: _Read = functools.partial(_one_value, field)
            (counter if make == "counter" else gauge)(name, unit, description, read)
        counter(
            "mqtt.client.connection_losses", "{connection}",
            "Established connections lost, by cause.",
            lambda s: (
                (n, {"error.type": cause}) for cause, n in s.connection_losses.items()
            ),
        )  # fmt: skip
        gauge(
            "mqtt.client.subscription.buffered", "{message}",
            "Messages waiting in a subscription's buffer for the application.",
            lambda s: (
                (sub.buffered, {"mqtt.topic_filter": " ".join(sub.topic_filters)})
                for sub in s.subscriptions
            ),
        )  # fmt: skip

    # -- hooks -------------------------------------------------------------------------------

    def on_client_opened(self, client: MQTTClient) -> None:
        """Report this client's metrics from now on."""
        endpoint = client.endpoint
        self._clients[client] = {
            "messaging.system": "mqtt",
            "messaging.client.id": client.client_id,
            "server.address": endpoint.host or endpoint.path,
            "server.port": endpoint.port,
        }
        self._generation += 1  # the next collection sees it (no lock: never wait here)

    def on_client_closed(self, client: MQTTClient) -> None:
        """Stop reporting this client's metrics."""
        self._clients.pop(client, None)
        self._generation += 1

    def on_publish_acknowledged(
        self, topic: str, qos: QoS, reason_code: ReasonCode, latency: float
    ) -> None:
        """Record the acknowledgement's latency in ``messaging.client.operation.duration``
        (unless ``record_latency=False``)."""
        if not self._record_latency:
            return
        error = reason_code.name if reason_code.is_failure else None
        name = self._destination_name
        destination = name(topic) if name is not None else None
        key = (qos, error, destination)
        attributes = self._attributes.get(key)
        if attributes is None:  # made once per combination, not per acknowledgement
            attributes = {
                "messaging.system": "mqtt",
                "messaging.operation.name": "publish",
                "messaging.operation.type": "send",
                "mqtt.qos": int(qos),
            }
            if error is not None:
                attributes["error.type"] = error
            if destination is not None:
                attributes["messaging.destination.name"] = destination
            if len(self._attributes) >= 1024:
                self._attributes.clear()
            self._attributes[key] = attributes
        self._duration.record(latency, attributes)

    # -- collection (the SDK's thread, perhaps) ------------------------------------------------

    def _statistics(self) -> list[tuple[ClientStatistics, _Attributes]]:
        """Every live client's statistics, taken once per collection: the instruments'
        callbacks come one after the other, and each reuses a snapshot younger than
        :data:`_SNAPSHOT_REUSE` (a client opened or closed since makes a new one)."""
        with self._lock:
            now = time.monotonic()
            generation = self._generation
            if (
                now - self._taken > _SNAPSHOT_REUSE
                or generation != self._snapshot_generation
            ):
                clients = list(self._clients.items())  # one C-level copy
                self._snapshot = [(c.statistics(), a) for c, a in clients]
                self._taken, self._snapshot_generation = now, generation
            return self._snapshot

    def _callback(
        self, read: _Read
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            return [
                Observation(value, {**common, **extra})
                for stats, common in self._statistics()
                for value, extra in read(stats)
            ]

        return observe


#: The instruments that report one field of ClientStatistics as they are: (counter or gauge,
#: name, unit, description, field).
_ONE_VALUE: tuple[tuple[str, str, str, str, str], ...] = (
    ("counter", "mqtt.client.connections", "{connection}", "Connections made.",
     "connections"),
    ("counter", "mqtt.client.failed_attempts", "{attempt}",
     "Connection attempts that failed.", "failed_attempts"),
    ("counter", "mqtt.client.qos0_dropped", "{message}",
     "QoS 0 messages lost with a connection while still in the client (an estimate).",
     "qos0_dropped"),
    ("gauge", "mqtt.client.publishes_in_flight", "{message}",
     "QoS 1/2 publishes sent and not yet acknowledged.", "publishes_in_flight"),
    ("gauge", "mqtt.client.offline_queue.messages", "{message}",
     "Publishes waiting for a connection or for the broker's Receive Maximum.",
     "offline_queue_messages"),
    ("gauge", "mqtt.client.offline_queue.size", "By", "Payload bytes in the offline queue.",
     "offline_queue_bytes"),
)  # fmt: skip


def _one_value(field: str, stats: ClientStatistics) -> list[tuple[int, _Attributes]]:
    value: int = getattr(stats, field)
    return [(value, {})]


def _by_qos(counts: CountsByQoS, operation: str) -> list[tuple[int, _Attributes]]:
    return [
        (counts[qos], {"messaging.operation.name": operation, "mqtt.qos": qos})
        for qos in (0, 1, 2)
    ]
