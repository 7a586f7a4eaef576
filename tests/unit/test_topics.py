from __future__ import annotations

import re

import pytest
from hypothesis import given, strategies as st

from trio_mqtt._topics import (
    split_shared,
    topic_filter_problem,
    topic_matches,
    topic_name_problem,
)


@pytest.mark.parametrize(
    "topic", ["a", "a/b", "/", "a//b", "$SYS/x", "sport/tennis/player1", " "]
)
def test_valid_topic_names(topic: str) -> None:
    assert topic_name_problem(topic) is None


@pytest.mark.parametrize(
    ("topic", "fragment"),
    [
        ("", "empty"),
        ("a/+", "wildcard"),
        ("#", "wildcard"),
        ("a\x00", "U+0000"),
        ("x" * 65536, "65535"),
    ],
)
def test_invalid_topic_names(topic: str, fragment: str) -> None:
    problem = topic_name_problem(topic)
    assert problem is not None
    assert fragment in problem


@pytest.mark.parametrize(
    "topic_filter",
    ["#", "+", "a/#", "+/+", "a/+/b", "/+", "$share/g/a/#", "$share/g//", "a//#"],
)
def test_valid_filters(topic_filter: str) -> None:
    assert topic_filter_problem(topic_filter) is None


@pytest.mark.parametrize(
    ("topic_filter", "fragment"),
    [
        ("a/#/b", "last level"),  # [MQTT-4.7.1-1]
        ("a#", "last level"),
        ("a/b+", "whole level"),  # [MQTT-4.7.1-2]
        ("$share//a", "share name"),  # [MQTT-4.8.2-1]
        ("$share/g+/a", "share name"),
        ("$share/g", "no topic filter"),
        ("$share/g/", "no topic filter"),
        ("", "empty"),
    ],
)
def test_invalid_filters(topic_filter: str, fragment: str) -> None:
    problem = topic_filter_problem(topic_filter)
    assert problem is not None
    assert fragment in problem


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("sport/tennis/player1/#", "sport/tennis/player1", True),  # section 4.7.1.2
        ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
        ("sport/#", "sport", True),
        ("sport/tennis/+", "sport/tennis/player1", True),
        ("sport/tennis/+", "sport/tennis/player1/ranking", False),
        ("sport/+", "sport", False),
        ("sport/+", "sport/", True),
        ("+/+", "/finance", True),
        ("/+", "/finance", True),
        ("+", "/finance", False),
        ("#", "$SYS/x", False),  # [MQTT-4.7.2-1]
        ("+/monitor/Clients", "$SYS/monitor/Clients", False),
        ("$SYS/#", "$SYS/monitor/Clients", True),
        ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
        ("$share/g/a/+", "a/b", True),
        ("a/b", "a/b", True),
        ("a/b", "a/c", False),
    ],
)
def test_matching(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected


def test_split_shared() -> None:
    assert split_shared("$share/group/a/+") == ("group", "a/+")
    assert split_shared("a/+") == (None, "a/+")


def _reference(topic_filter: str, topic: str) -> bool:
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    pattern = "/".join(
        "[^/]*" if lv == "+" else re.escape(lv) for lv in topic_filter.split("/")
    )
    if topic_filter.endswith("/#"):
        pattern = pattern[: -len("/\\#")] + "(/.*)?"
    elif topic_filter == "#":
        pattern = ".*"
    return re.fullmatch(pattern, topic, flags=re.DOTALL) is not None


levels = st.lists(st.sampled_from(["a", "b", "", "$x"]), min_size=1, max_size=4)


@given(
    filter_levels=st.lists(
        st.sampled_from(["a", "b", "", "+", "$x"]), min_size=1, max_size=4
    ),
    hash_end=st.booleans(),
    topic=levels,
)
def test_matcher_agrees_with_a_regex_reference(
    filter_levels: list[str], hash_end: bool, topic: list[str]
) -> None:
    topic_filter = "/".join([*filter_levels, "#"] if hash_end else filter_levels)
    topic_name = "/".join(topic)
    if topic_filter_problem(topic_filter) or topic_name_problem(topic_name):
        return
    assert topic_matches(topic_filter, topic_name) == _reference(
        topic_filter, topic_name
    )
