"""Requests: the SUBSCRIBE/UNSUBSCRIBE of one connection awaiting SUBACK/UNSUBACK.

Their packet ids come from the session's allocator but are never resent: a request that dies
with its connection is asked again by the client on the next one, so :meth:`lost` frees its id.
An acknowledgement must answer a request in flight, with one reason code per topic filter
([MQTT-3.9.3-1], [MQTT-3.11.3-1]).
"""

from __future__ import annotations

from collections.abc import Sequence

from .._exceptions import RemoteProtocolError
from ._events import Event, SubscribeAcknowledged, UnsubscribeAcknowledged
from ._outgoing import Outgoing
from ._packets import SubAck, Subscribe, SubscriptionRequest, UnsubAck, Unsubscribe
from ._properties import Properties
from ._session import SessionState

_ANSWERS = {"SUBACK": "SUBSCRIBE", "UNSUBACK": "UNSUBSCRIBE"}


class Requests:
    """SUBSCRIBE/UNSUBSCRIBE in flight on one connection: packet id -> (kind, filters)."""

    __slots__ = ("_in_flight", "_out", "_session", "blamed")

    def __init__(self, session: SessionState, out: Outgoing) -> None:
        self._session = session
        self._out = out
        self._in_flight: dict[int, tuple[str, tuple[str, ...]]] = {}
        #: the request an acknowledgement that broke the protocol answered (see _poison)
        self.blamed: int | None = None

    def oldest(self) -> tuple[int, str, tuple[str, ...]] | None:
        """The oldest request in flight: packet id, kind and topic filters."""
        for packet_id, (kind, filters) in self._in_flight.items():
            return packet_id, kind, filters
        return None

    def describe(self, packet_id: int) -> tuple[str, tuple[str, ...]] | None:
        """The kind and topic filters of request ``packet_id``, if it is in flight."""
        return self._in_flight.get(packet_id)

    def subscribe(
        self, requests: Sequence[SubscriptionRequest], properties: Properties
    ) -> int:
        """Queue SUBSCRIBE; its packet id."""
        packet_id, _ = self._out.send_numbered(
            self._session.packet_ids,
            lambda pid: Subscribe(
                packet_id=pid, subscriptions=tuple(requests), properties=properties
            ),
        )
        self._in_flight[packet_id] = (
            "SUBSCRIBE",
            tuple(request.topic_filter for request in requests),
        )
        return packet_id

    def unsubscribe(self, topic_filters: Sequence[str], properties: Properties) -> int:
        """Queue UNSUBSCRIBE; its packet id."""
        packet_id, _ = self._out.send_numbered(
            self._session.packet_ids,
            lambda pid: Unsubscribe(
                packet_id=pid, topic_filters=tuple(topic_filters), properties=properties
            ),
        )
        self._in_flight[packet_id] = ("UNSUBSCRIBE", tuple(topic_filters))
        return packet_id

    def on_suback(self, packet: SubAck) -> list[Event]:
        self._answered(packet.packet_id, "SUBACK", len(packet.reason_codes))
        return [
            SubscribeAcknowledged(
                packet.packet_id, packet.reason_codes, packet.properties
            )
        ]

    def on_unsuback(self, packet: UnsubAck, *, v5: bool) -> list[Event]:
        count = len(packet.reason_codes) if v5 else None  # 3.1.1: no codes
        self._answered(packet.packet_id, "UNSUBACK", count)
        return [
            UnsubscribeAcknowledged(
                packet.packet_id, packet.reason_codes, packet.properties
            )
        ]

    def _answered(self, packet_id: int, what: str, count: int | None) -> None:
        ids = self._session.packet_ids
        request = self._in_flight.get(packet_id)
        if (
            request is None
            or not ids.in_use(packet_id)
            or packet_id in self._session.outbound
            or request[0] != _ANSWERS[what]
        ):
            if request is not None:
                self.blamed = packet_id
            raise RemoteProtocolError(
                f"{what} for packet id {packet_id}, which has no {_ANSWERS[what]} in flight"
            )
        expected = len(request[1])
        if count is not None and count != expected:
            # one reason code per topic filter: [MQTT-3.9.3-1], [MQTT-3.11.3-1]
            self.blamed = packet_id
            raise RemoteProtocolError(
                f"{what} carries {count} reason codes for {expected} topic filters"
            )
        del self._in_flight[packet_id]
        ids.release(packet_id)

    def lost(self) -> None:
        """The connection is gone: free the ids of the requests that died with it."""
        ids = self._session.packet_ids
        for packet_id in self._in_flight:
            ids.release(packet_id)
        self._in_flight.clear()
