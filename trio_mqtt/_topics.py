"""Topic names, topic filters and matching (MQTT 5.0 section 4.7).

The ``*_problem`` functions return a sentence describing what is wrong, or ``None``; the codec turns
that into a protocol error for bytes from the network, the public API into :class:`ValueError`.
"""

from __future__ import annotations

from typing import Final

_MAX_LENGTH: Final = 65535
_SHARE_PREFIX: Final = "$share/"


def _string_problem(text: str, what: str) -> str | None:
    if not text:
        # [MQTT-4.7.3-1] topic names and filters are at least one character long.
        return f"the {what} is empty"
    if "\x00" in text:
        # [MQTT-4.7.3-2] no U+0000.
        return f"the {what} contains U+0000"
    if (
        len(text) > _MAX_LENGTH // 4
        and len(text.encode("utf-8", "surrogatepass")) > _MAX_LENGTH
    ):
        # [MQTT-4.7.3-3] at most 65535 bytes of UTF-8.
        return f"the {what} is longer than 65535 bytes"
    return None


def topic_name_problem(topic: str) -> str | None:
    """What is wrong with ``topic`` as a PUBLISH topic name, or ``None`` if it is valid."""
    problem = _string_problem(topic, "topic name")
    if problem is None and ("+" in topic or "#" in topic):
        # [MQTT-3.3.2-2] [MQTT-4.7.0-1] wildcards are not allowed in topic names.
        problem = f"the topic name {topic!r} contains a wildcard ('+' or '#')"
    return problem


def topic_filter_problem(topic_filter: str) -> str | None:
    """What is wrong with ``topic_filter`` as a subscription filter, or ``None`` if it is valid.

    Shared subscriptions (``$share/{group}/{filter}``, section 4.8.2) are checked as such.
    """
    problem = _string_problem(topic_filter, "topic filter")
    if problem is not None:
        return problem
    filter_part = topic_filter
    if topic_filter.startswith(_SHARE_PREFIX):
        group, sep, filter_part = topic_filter[len(_SHARE_PREFIX) :].partition("/")
        # [MQTT-4.8.2-1] [MQTT-4.8.2-2] a non-empty ShareName without wildcards, then a filter.
        if not group or "+" in group or "#" in group:
            return f"the share name of {topic_filter!r} must be non-empty and free of wildcards"
        if not sep or not filter_part:
            return f"the shared subscription {topic_filter!r} has no topic filter after the share name"
    if "+" not in filter_part and "#" not in filter_part:
        return None
    levels = filter_part.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            # [MQTT-4.7.1-1] '#' stands alone as the last level.
            return f"in {topic_filter!r}, '#' must be the whole last level"
        if "+" in level and level != "+":
            # [MQTT-4.7.1-2] '+' occupies a whole level.
            return f"in {topic_filter!r}, '+' must occupy a whole level"
    return None


def validate_topic_name(topic: str) -> str:
    """Return ``topic`` if it is a valid topic name, else raise :class:`ValueError`."""
    problem = topic_name_problem(topic)
    if problem is not None:
        raise ValueError(problem)
    return topic


def validate_topic_filter(topic_filter: str) -> str:
    """Return ``topic_filter`` if it is a valid filter, else raise :class:`ValueError`."""
    problem = topic_filter_problem(topic_filter)
    if problem is not None:
        raise ValueError(problem)
    return topic_filter


def split_shared(topic_filter: str) -> tuple[str | None, str]:
    """Split ``$share/group/filter`` into ``("group", "filter")``; other filters into ``(None, filter)``."""
    if topic_filter.startswith(_SHARE_PREFIX):
        group, _, rest = topic_filter[len(_SHARE_PREFIX) :].partition("/")
        return group, rest
    return None, topic_filter


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether the topic name ``topic`` matches ``topic_filter`` (section 4.7).

    A shared filter matches what its inner filter matches. Filters starting with a wildcard do not
    match topics starting with ``$`` ([MQTT-4.7.2-1]).

    Args:
        topic_filter: a topic filter (``+``, ``#``, or ``$share/group/filter``).
        topic: a topic name.

    Returns:
        Whether it matches.

    Raises:
        Nothing: neither is validated (:func:`open_client`'s calls validate theirs).
    """
    _, topic_filter = split_shared(topic_filter)
    if topic_filter == topic:
        return True
    if "+" not in topic_filter and "#" not in topic_filter:
        return False
    if topic.startswith("$") and topic_filter[0] in "+#":
        return False
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            # 'a/#' also matches the parent 'a' (section 4.7.1.2).
            return True
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == len(topic_levels)
