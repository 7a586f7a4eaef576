"""What :meth:`MQTTClient.statistics` and :meth:`Subscription.statistics` report: snapshots of
counters the client keeps anyway, cheap to take and safe to take from another thread (an
exporter's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import final

import attrs

from ._enums import QoS
from ._exceptions import MQTTError
from ._status import ClientState


@final
@attrs.frozen
class SubscriptionStatistics:
    """A snapshot of a subscription's buffer.

    Attributes:
        buffered: messages waiting to be received.
        buffer_size: the most it holds before the client stops reading the network.
        delivered: messages handed to this subscription so far.
        topic_filters: its topic filters, in request order.
    """

    buffered: int
    buffer_size: int
    delivered: int
    topic_filters: tuple[str, ...] = ()


@final
@attrs.frozen
class CountsByQoS:
    """Message counts by QoS level; ``counts[QoS.AT_LEAST_ONCE]`` works too.

    Attributes:
        qos0: at most once.
        qos1: at least once.
        qos2: exactly once.
    """

    qos0: int
    qos1: int
    qos2: int

    @property
    def total(self) -> int:
        """All three together."""
        return self.qos0 + self.qos1 + self.qos2

    def __getitem__(self, qos: QoS | int) -> int:
        """The count for ``qos`` (0, 1 or 2).

        Raises:
            IndexError: not a QoS level.
        """
        if qos not in (0, 1, 2):
            raise IndexError(f"no QoS level {qos!r}: 0, 1 or 2")
        return (self.qos0, self.qos1, self.qos2)[qos]


#: The upper bounds, in seconds, of :class:`LatencyHistogram`'s buckets (the last bucket,
#: beyond 10 s, has none).
LATENCY_BOUNDS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


@final
@attrs.frozen(kw_only=True)
class LatencyHistogram:
    """How long the broker took to acknowledge QoS 1/2 publishes: from the PUBLISH handed to
    the connection to its PUBACK (QoS 1) or PUBCOMP (QoS 2). A message resent after a
    reconnect counts from its first send, outage included.

    Attributes:
        bounds: the buckets' upper bounds, in seconds: 0.5 ms, 1 ms, 2.5 ms, 5 ms, 10 ms,
            25 ms, 50 ms, 0.1 s, 0.25 s, 0.5 s, 1 s, 2.5 s, 5 s and 10 s.
        counts: acknowledgements per bucket: ``counts[i]`` took at most ``bounds[i]`` (and
            more than ``bounds[i - 1]``); the last, one more than ``bounds``, took longer than
            the last bound. Not cumulative.
        count: acknowledgements measured.
        sum: their latencies added up, in seconds.
    """

    bounds: tuple[float, ...] = LATENCY_BOUNDS
    counts: tuple[int, ...] = (0,) * (len(LATENCY_BOUNDS) + 1)
    count: int = 0
    sum: float = 0.0

    @property
    def mean(self) -> float | None:
        """The mean latency in seconds (``None`` before the first acknowledgement)."""
        return self.sum / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """An upper estimate of the ``q`` quantile: the bound of the bucket it falls in
        (``math.inf`` in the last one; ``None`` before the first acknowledgement).

        Args:
            q: between 0 and 1, e.g. 0.99.

        Returns:
            The bucket's upper bound in seconds, ``math.inf``, or ``None``.

        Raises:
            ValueError: ``q`` is not between 0 and 1.
        """
        if not 0 <= q <= 1:
            raise ValueError(f"q must be between 0 and 1, not {q!r}")
        if not self.count:
            return None
        rank = q * self.count
        seen = 0
        for index, n in enumerate(self.counts):
            seen += n
            if n and seen >= rank:
                return self.bounds[index] if index < len(self.bounds) else float("inf")
        return float("inf")  # pragma: no cover - the counts add up to count


@final
@attrs.frozen(kw_only=True)
class ClientStatistics:
    """A snapshot of what a client has done since it was opened, over all its connections
    (:meth:`MQTTClient.statistics`). Counters only grow; gauges are the value now.

    Attributes:
        state: where the client is now.
        messages_sent: PUBLISH packets handed to a connection, by QoS (first sends only: a
            resend after a reconnect is the same message).
        messages_received: PUBLISH packets received from the broker, by QoS (its
            redeliveries included; a QoS 2 duplicate is never handed to the application).
        bytes_sent: MQTT bytes handed to the transport (TLS and WebSocket framing aside).
        bytes_received: MQTT bytes received.
        publishes_in_flight: QoS 1/2 publishes sent and not yet acknowledged (gauge).
        offline_queue_messages: publishes waiting for a connection, or for the broker's
            Receive Maximum (gauge).
        offline_queue_bytes: their payload bytes (gauge).
        subscriptions: each open subscription's buffer (gauge).
        connections: connections made, the first one included.
        reconnects: connections made again after a loss.
        failed_attempts: connection attempts that failed (refused, unreachable, timed out).
        connection_losses: established connections lost, by cause: the error's class name,
            with its reason code when it has one, e.g. ``ConnectionLostError`` or
            ``ConnectionLostError(SESSION_TAKEN_OVER)`` (few distinct values: fit for a
            metric label).
        last_loss: why the latest connection was lost, if one was.
        ack_latency: the broker's acknowledgement latency for QoS 1/2 publishes.
        qos0_dropped: QoS 0 messages lost with a connection while still in the client:
            queued, or in a write the connection did not finish (at most once: they are not
            sent again). An estimate: messages already in the operating system's buffers are
            lost unseen, and one in an unfinished write may have gone out.
        hook_errors: exceptions raised by the ``hooks`` object's methods (each was logged).
    """

    state: ClientState
    messages_sent: CountsByQoS
    messages_received: CountsByQoS
    bytes_sent: int
    bytes_received: int
    publishes_in_flight: int
    offline_queue_messages: int
    offline_queue_bytes: int
    subscriptions: tuple[SubscriptionStatistics, ...]
    connections: int
    reconnects: int
    failed_attempts: int
    connection_losses: Mapping[str, int]
    last_loss: MQTTError | None
    ack_latency: LatencyHistogram
    qos0_dropped: int
    hook_errors: int
