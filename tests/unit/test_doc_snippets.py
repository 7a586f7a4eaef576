"""The Python snippets in docs/ cannot rot silently: each one parses, and every API name it
uses exists: ``trio_mqtt.X``, ``client.X`` (an MQTTClient), and the keyword arguments of
``open_client``, ``publish``, ``subscribe``, ``pipeline`` and ``request`` calls. (Whole
examples are included from examples/, which the suite runs.)"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path

import pytest

import trio_mqtt
import trio_mqtt.testing

DOCS = Path(__file__).parents[2] / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)
CHECKED_CALLS = {
    "open_client": trio_mqtt.open_client,
    "publish": trio_mqtt.MQTTClient.publish,
    "subscribe": trio_mqtt.MQTTClient.subscribe,
    "pipeline": trio_mqtt.MQTTClient.pipeline,
    "request": trio_mqtt.MQTTClient.request,
    "disconnect": trio_mqtt.MQTTClient.disconnect,
}


def snippets() -> list[tuple[str, str]]:
    found = []
    for page in sorted(DOCS.glob("*.md")):
        for number, match in enumerate(BLOCK.finditer(page.read_text())):
            found.append((f"{page.name}#{number}", match.group(1)))
    return found


def parse(code: str) -> ast.Module:
    """A snippet as a module: fragments with ``await`` or ``async with`` at the top level
    are wrapped in an ``async def``."""
    try:
        return ast.parse(code)
    except SyntaxError:
        return ast.parse("async def _snippet():\n" + textwrap.indent(code, "    "))


def problems(where: str, code: str) -> list[str]:
    """The API names ``code`` uses that do not exist."""
    found = []
    for node in ast.walk(parse(code)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "trio_mqtt" and not hasattr(trio_mqtt, node.attr):
                found.append(f"{where}: trio_mqtt.{node.attr}")
            if node.value.id == "client" and not hasattr(
                trio_mqtt.MQTTClient, node.attr
            ):
                found.append(f"{where}: client.{node.attr}")
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            function = CHECKED_CALLS.get(name or "")
            if function is None:
                continue
            parameters = inspect.signature(function).parameters
            found += [
                f"{where}: {name}({keyword.arg}=...)"
                for keyword in node.keywords
                if keyword.arg is not None and keyword.arg not in parameters
            ]
    return found


@pytest.mark.parametrize(("where", "code"), snippets(), ids=[w for w, _ in snippets()])
def test_the_snippet_uses_only_names_that_exist(where: str, code: str) -> None:
    assert problems(where, code) == []


def test_there_are_snippets_to_check() -> None:
    assert len(snippets()) >= 15


def test_the_check_sees_what_rotted() -> None:
    code = "async with trio_mqtt.open_clinet(url) as client:\n    await client.publish('t', retained=True)"
    assert problems("x", code) == [
        "x: trio_mqtt.open_clinet",
        "x: publish(retained=...)",
    ]
