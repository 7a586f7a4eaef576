"""The packet trace: every packet a connection sends and receives, at DEBUG on the
``trio_mqtt.packets`` logger.

Opt-in and free when off: a link wraps its byte stream in :class:`TracedStream` only when that
logger is enabled for DEBUG as the connection opens. The wrapper decodes a copy of the bytes
with a reader of its own, so the protocol machine and its hot paths are the same traced or not.

A line says the client (its client id), the direction (``>>`` sent, ``<<`` received) and the
packet: its type, packet id, QoS and flags, topic, payload *length*, reason codes, topic filters.
Never payload bytes, properties' values, passwords, user names or authentication data.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from .._enums import ProtocolVersion
from .._exceptions import MQTTError
from .._sansio._codec import MAX_PACKET_SIZE, PacketReader
from .._sansio._packets import (
    Auth,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    Publish,
    Subscribe,
    Unsubscribe,
)
from ._stream import ByteStream

#: The logger of the packet trace (public name, documented in docs/errors.md).
packets_log = logging.getLogger("trio_mqtt.packets")


def traced(stream: ByteStream, version: ProtocolVersion) -> ByteStream:
    """``stream``, wrapped to trace its packets if ``trio_mqtt.packets`` logs DEBUG now."""
    if packets_log.isEnabledFor(logging.DEBUG):
        return TracedStream(stream, version)
    return stream


def describe(packet: Packet) -> str:
    """One line about ``packet`` with nothing secret in it (see the module docstring)."""
    parts = [type(packet).__name__.upper()]
    packet_id = getattr(packet, "packet_id", None)
    if packet_id is not None:
        parts.append(f"id={packet_id}")
    if isinstance(packet, Publish):
        parts.append(f"qos={int(packet.qos)}")
        parts += [
            flag for flag, on in (("dup", packet.dup), ("retain", packet.retain)) if on
        ]
        parts.append(f"topic={packet.topic!r}")
        alias = packet.properties.topic_alias
        if alias is not None:
            parts.append(f"alias={alias}")
        parts.append(f"payload={len(packet.payload)} bytes")
    elif isinstance(packet, Connect):
        parts += [
            "v5" if packet.protocol_version is ProtocolVersion.V5 else "v3.1.1",
            f"client_id={packet.client_id!r}",
            f"clean_start={packet.clean_start}",
            f"keep_alive={packet.keep_alive}",
        ]
        parts += [
            name
            for name, present in (
                ("username", packet.username is not None),
                ("password", packet.password is not None),
                ("auth", packet.properties.authentication_method is not None),
            )
            if present
        ]
        if packet.will is not None:
            parts.append(f"will={packet.will.topic!r}")
    elif isinstance(packet, ConnAck):
        parts.append(f"session_present={packet.session_present}")
    elif isinstance(packet, Subscribe):
        parts.append(
            "filters="
            + ", ".join(
                f"{s.topic_filter!r} qos={int(s.qos)}" for s in packet.subscriptions
            )
        )
    elif isinstance(packet, Unsubscribe):
        parts.append(f"filters={', '.join(repr(f) for f in packet.topic_filters)}")
    reason = getattr(packet, "reason_code", None)
    if reason is not None and (
        reason.value or isinstance(packet, ConnAck | Disconnect | Auth)
    ):
        parts.append(f"reason={reason.describe()}")
    codes = getattr(packet, "reason_codes", None)
    if codes:
        parts.append("codes=" + ",".join(f"0x{code.value:02X}" for code in codes))
    return " ".join(parts)


class _Direction:
    """One direction's reader; a stream it cannot decode is reported once, then left alone."""

    __slots__ = ("arrow", "reader")

    def __init__(self, arrow: str, version: ProtocolVersion) -> None:
        self.arrow = arrow
        self.reader: PacketReader | None = PacketReader(
            version=version, max_packet_size=MAX_PACKET_SIZE
        )

    def feed(self, data: bytes, trace: TracedStream) -> None:
        if self.reader is None or not data:
            return
        try:
            packets = self.reader.feed(data)
        except MQTTError as exc:
            self.reader = None
            packets_log.debug("%s %s undecodable: %s", trace.label, self.arrow, exc)
            return
        for packet in packets:
            if isinstance(packet, Connect):
                trace.label = packet.client_id or "(no client id)"
            elif isinstance(packet, ConnAck):
                assigned = packet.properties.assigned_client_identifier
                if assigned:
                    trace.label = assigned
            packets_log.debug("%s %s %s", trace.label, self.arrow, describe(packet))


class TracedStream(ByteStream):
    """A :class:`ByteStream` that logs the packets going through it (see the module)."""

    __slots__ = ("_inbound", "_inner", "_outbound", "label")

    def __init__(self, inner: ByteStream, version: ProtocolVersion) -> None:
        # not ByteStream.__init__: every operation goes to ``inner``
        self.stream = inner.stream
        self._inner = inner
        self._outbound = _Direction(">>", version)
        self._inbound = _Direction("<<", version)
        self.label = "(connecting)"

    @property
    def reads_cut_short(self) -> bool:  # type: ignore[override]
        return self._inner.reads_cut_short

    def wait(self) -> Awaitable[None]:
        return self._inner.wait()

    def read(self) -> bytes | None:
        data = self._inner.read()
        if data:
            self._inbound.feed(data, self)
        return data

    def try_send(self, data: bytes) -> int:
        sent = self._inner.try_send(data)
        self._outbound.feed(data[:sent], self)
        return sent

    async def send_all(self, data: bytes) -> None:
        await self._inner.send_all(data)
        self._outbound.feed(data, self)

    def detach(self) -> None:
        self._inner.detach()

    async def aclose(self, grace: float, *, linger: bool = False) -> None:
        await self._inner.aclose(grace, linger=linger)

    async def discard(self) -> None:
        await self._inner.discard()
