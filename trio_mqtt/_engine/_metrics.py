"""What the client measures about itself, and the application's hooks.

Counting is split by owner: each protocol machine adds to the client's
:class:`~trio_mqtt._sansio._traffic.Traffic`, the outbox times acknowledgements
(:class:`AckLatency`), the supervisor counts connections and their losses.
``_snapshot.statistics`` only reads them, with C-level copies of the containers, so an
exporter's thread may take a snapshot while the client runs (some fields may be a few events
apart: counters, not a transaction).

:class:`HookCaller` holds the application's ``ClientHooks`` methods it overrode (``None``
for the rest: a hook nobody wrote costs one ``is None`` test where its event happens) and calls
them so that a hook's exception never reaches the client's tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from .._exceptions import MQTTError
from .._statistics import LATENCY_BOUNDS, LatencyHistogram, SubscriptionStatistics
from ._inbox import Inbox

log = logging.getLogger("trio_mqtt")


class AckLatency:
    """The acknowledgement latency histogram's buckets (see :class:`LatencyHistogram`),
    filled by :meth:`Outbox.acknowledged`: ``counts[bisect_left(LATENCY_BOUNDS, s)] += 1``
    and ``sum += s``, inline."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BOUNDS) + 1)
        self.sum = 0.0

    def snapshot(self) -> LatencyHistogram:
        """The histogram as it is now."""
        counts = tuple(self.counts)
        return LatencyHistogram(counts=counts, count=sum(counts), sum=self.sum)


def cause_label(error: MQTTError) -> str:
    """A short, low-cardinality name for why a connection ended: the error's class, with its
    reason code's name when it carries one (e.g. ``ConnectionLostError(SESSION_TAKEN_OVER)``)."""
    name = type(error).__name__
    reason_code = getattr(error, "reason_code", None)
    if reason_code is None:
        return name
    return f"{name}({reason_code.name})"


def subscription_statistics(inbox: Inbox) -> SubscriptionStatistics:
    return SubscriptionStatistics(
        buffered=len(inbox),
        buffer_size=inbox.buffer_size,
        delivered=inbox.delivered,
        topic_filters=inbox.filters,
    )


class HookCaller:
    """The methods an application's ``ClientHooks`` overrides, called safely."""

    __slots__ = (
        "client_closed",
        "client_opened",
        "connected",
        "disconnected",
        "errors",
        "message_received",
        "publish_acknowledged",
        "reconnecting",
    )

    def __init__(self, methods: Mapping[str, Callable[..., None] | None]) -> None:
        """``methods``: by slot name, the application's method, or ``None`` where it wrote
        none (see :func:`trio_mqtt._hooks.overridden`)."""
        self.errors = 0
        self.client_opened = methods.get("client_opened")
        self.client_closed = methods.get("client_closed")
        self.connected = methods.get("connected")
        self.disconnected = methods.get("disconnected")
        self.reconnecting = methods.get("reconnecting")
        self.publish_acknowledged = methods.get("publish_acknowledged")
        self.message_received = methods.get("message_received")

    def call(self, method: Callable[..., None], *args: Any) -> None:
        """``method(*args)``; an exception is logged and counted (:meth:`failed`), never
        raised: a broken metric must not break the client."""
        try:
            method(*args)
        except Exception:
            self.failed(method)

    def failed(self, method: Callable[..., None]) -> None:
        """``method`` raised (called from its ``except`` block): count and log it, with the
        traceback the first time only (a hook that always fails must not flood the log)."""
        self.errors += 1
        log.warning(
            "hook %s raised (%d so far); the client goes on",
            getattr(method, "__qualname__", method), self.errors,
            exc_info=self.errors == 1,
        )  # fmt: skip
