"""Topic aliases we set on our PUBLISH packets (section 3.3.2.3.4), when the application asks.

Per connection, at most the server's Topic Alias Maximum topics have an alias, the most
recently used ones (an LRU): a new topic takes a free alias. When none is free, a topic seen
for the first time goes out in full without one (an alias would cost 3 bytes and likely never
be used again); a topic seen before (among the last few misses) takes the least recently used
topic's alias. Without that door, more topics in rotation than aliases would steal each
other's aliases forever: every message 3 bytes longer, and none shorter. The first PUBLISH of a topic under an alias carries the topic and the alias (which
sets it, [MQTT-3.3.2-12]); later ones carry an empty topic and the alias. No alias is 0 or
above the maximum ([MQTT-3.3.2-8], [MQTT-3.3.2-9]).

Only the bytes on the wire carry aliases: the session keeps each PUBLISH with its topic, so a
resend on a later connection (where the aliases are gone, [MQTT-3.3.2-10]) carries the full
topic. The mapping changes only once a PUBLISH is queued (:meth:`OutboundAliases.commit`):
a packet refused before it is sent (too large) sets nothing the broker would not know.
"""

from __future__ import annotations

import attrs

from ._properties import Properties


class OutboundAliases:
    """The topic aliases of one connection: topic -> alias, least recently used first."""

    __slots__ = ("_by_topic", "_seen", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit  # the server's Topic Alias Maximum (> 0)
        self._by_topic: dict[str, int] = {}
        self._seen: set[str] = set()  # topics that missed while no alias was free

    def choose(self, topic: str) -> tuple[int, bool]:
        """The alias for ``topic`` (0: none), and whether the server knows it already."""
        by_topic = self._by_topic
        alias = by_topic.get(topic)
        if alias is not None:
            return alias, True
        if len(by_topic) < self.limit:
            return len(by_topic) + 1, False
        if topic not in self._seen:
            return 0, False  # first seen: in full, no alias (the door)
        return next(iter(by_topic.values())), False  # the least recently used topic's

    def wire(
        self, topic: str, properties: Properties
    ) -> tuple[str, Properties, int, bool]:
        """The topic and properties to send for ``topic``, and the alias chosen (pass them
        to :meth:`commit` once the packet is queued)."""
        alias, known = self.choose(topic)
        if not alias:
            return topic, properties, 0, False
        properties = attrs.evolve(properties, topic_alias=alias)
        return ("" if known else topic), properties, alias, known

    def commit(self, topic: str, alias: int, known: bool) -> None:
        """A PUBLISH for ``topic`` under ``alias`` (0: none) was queued: record it."""
        by_topic = self._by_topic
        if not alias:
            seen = self._seen
            if len(seen) >= 4 * self.limit:
                seen.clear()  # the door remembers only the last misses
            seen.add(topic)
            return
        if known:
            del by_topic[topic]  # most recent last
        elif len(by_topic) >= self.limit:
            del by_topic[next(iter(by_topic))]  # the topic whose alias is taken over
            self._seen.discard(topic)
        by_topic[topic] = alias
