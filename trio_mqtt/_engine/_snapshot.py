"""The snapshot behind :meth:`MQTTClient.statistics`: it reads the counters each part of the
engine keeps (see :mod:`._metrics`), and writes nothing."""

from __future__ import annotations

from .._statistics import ClientStatistics, CountsByQoS, LatencyHistogram
from ._core import ClientCore
from ._metrics import subscription_statistics
from ._supervisor import Supervisor

_NO_LATENCY = LatencyHistogram()


def statistics(core: ClientCore, supervisor: Supervisor) -> ClientStatistics:
    """A snapshot of one client's counters (see :class:`ClientStatistics`)."""
    traffic = supervisor.traffic
    outbox = core.outbox
    latency = outbox.latency
    sent, received = traffic.sent_by_qos(), traffic.received_by_qos()
    return ClientStatistics(
        state=core.status.state,
        messages_sent=CountsByQoS(*sent),
        messages_received=CountsByQoS(*received),
        bytes_sent=traffic.bytes_sent,
        bytes_received=traffic.bytes_received,
        publishes_in_flight=len(supervisor.session.outbound),
        offline_queue_messages=outbox.queued_messages,
        offline_queue_bytes=outbox.queued_bytes,
        subscriptions=tuple(
            subscription_statistics(inbox) for inbox in list(core.router.subscriptions)
        ),
        connections=supervisor.connections,
        reconnects=supervisor.reconnects,
        failed_attempts=supervisor.failed_attempts,
        connection_losses=dict(supervisor.losses or {}),
        last_loss=supervisor.last_loss,
        ack_latency=_NO_LATENCY if latency is None else latency.snapshot(),
        qos0_dropped=traffic.qos0_dropped,
        hook_errors=0 if core.hooks is None else core.hooks.errors,
    )
