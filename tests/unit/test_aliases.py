"""Outbound topic aliases (sans I/O): whatever the topics, the broker resolves every PUBLISH to
the topic the application gave, and no alias is 0 or above the broker's maximum."""

from __future__ import annotations

from hypothesis import given, strategies as st

from trio_mqtt._sansio._aliases import OutboundAliases
from trio_mqtt._sansio._properties import Properties


@given(
    limit=st.integers(1, 5),
    topics=st.lists(st.sampled_from([f"t/{n}" for n in range(8)]), max_size=200),
    refused=st.sets(st.integers(0, 199)),
)
def test_the_broker_always_resolves_the_topic_given(
    limit: int, topics: list[str], refused: set[int]
) -> None:
    """A broker's alias table, fed what the client sends: every PUBLISH resolves to its
    topic ([MQTT-3.3.2-12]); aliases stay in 1..limit ([MQTT-3.3.2-8], [MQTT-3.3.2-9]).
    Packets in ``refused`` are chosen but never queued (too large): no commit."""
    aliases = OutboundAliases(limit)
    broker: dict[int, str] = {}
    for index, topic in enumerate(topics):
        wire_topic, properties, alias, known = aliases.wire(topic, Properties())
        if index in refused:
            continue  # never sent: the broker learns nothing
        aliases.commit(topic, alias, known)
        sent_alias = properties.topic_alias
        assert sent_alias == (alias or None)
        if sent_alias is None:
            assert wire_topic == topic
            continue
        assert 1 <= sent_alias <= limit
        if wire_topic:
            broker[sent_alias] = wire_topic
        assert broker[sent_alias] == topic


def test_a_rotation_wider_than_the_aliases_still_hits() -> None:
    """5 topics in turn over 3 aliases: a plain LRU would steal aliases forever (no message
    sent as an alias alone); the door lets most repeats go as 2-byte aliases."""
    aliases = OutboundAliases(3)
    hits = 0
    for _ in range(100):
        for topic in "ABCDE":
            wire_topic, _, alias, known = aliases.wire(topic, Properties())
            aliases.commit(topic, alias, known)
            hits += wire_topic == ""
    assert hits > 200  # of 500
