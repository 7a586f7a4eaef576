"""No code in the docs can rot: every Python block on a page is included from a file under
examples/ that the suite runs (``literalinclude``), and every shell command names files that
exist and options that the program it runs has.

The included fragments are also checked here, faster than by running them: each one parses
and every API name it uses exists: ``trio_mqtt.X``, ``client.X`` (an MQTTClient), and the
keyword arguments of ``open_client``, ``publish``, ``subscribe``, ``pipeline`` and ``request``.
"""

from __future__ import annotations

import ast
import inspect
import re
import shlex
import textwrap
from pathlib import Path

import pytest

import trio_mqtt
import trio_mqtt.testing
from trio_mqtt._cli import _parser

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
FENCE = re.compile(r"^```(\S*) *([^\n]*)\n(.*?)^```", re.M | re.S)
OPTION = re.compile(r"^:([\w-]+):\s*(.*)$", re.M)
# Where the suite runs the files that the pages include (tests/integration/test_examples.py
# runs examples/*.py and examples/snippets/*.py; pytest collects examples/testing/ and the
# integration tests, whose helpers a page may show as they are tested).
RUN_BY_THE_SUITE = [
    *(ROOT / "examples").glob("*.py"),
    *(ROOT / "examples" / "snippets").glob("*.py"),
    *(ROOT / "examples" / "testing").glob("test_*.py"),
    *(ROOT / "tests" / "integration").glob("test_*.py"),
]
CHECKED_CALLS = {
    "open_client": trio_mqtt.open_client,
    "publish": trio_mqtt.MQTTClient.publish,
    "subscribe": trio_mqtt.MQTTClient.subscribe,
    "pipeline": trio_mqtt.MQTTClient.pipeline,
    "request": trio_mqtt.MQTTClient.request,
    "disconnect": trio_mqtt.MQTTClient.disconnect,
}


def blocks(language: str) -> list[tuple[str, str]]:
    """(where, text) of every fenced block of ``language`` on the pages: what follows the
    language on the opening line, then the body."""
    found = []
    for page in PAGES:
        for number, match in enumerate(FENCE.finditer(page.read_text())):
            if match.group(1) == language:
                text = f"{match.group(2)}\n{match.group(3)}".lstrip("\n")
                found.append((f"{page.name}#{number}", text))
    return found


def included(body: str) -> tuple[Path, str]:
    """The file a ``literalinclude`` block names, and the fragment it shows."""
    first, _, rest = body.partition("\n")
    path = (DOCS / first.strip()).resolve()
    options = dict(OPTION.findall(rest))
    text = path.read_text()
    start = options.get("start-after", "").strip('"')
    end = options.get("end-before", "").strip('"')
    if start:
        assert start in text, f"{path.name} has no {start}"
        text = text.split(start, 1)[1].split("\n", 1)[1]
    if end:
        assert end in text, f"{path.name} has no {end}"
        text = text.split(end, 1)[0].rsplit("\n", 1)[0]
    return path, textwrap.dedent(text)


INCLUDES = blocks("{literalinclude}")


def test_no_page_has_a_python_block_of_its_own() -> None:
    """Python shown on a page comes from a file the suite runs, never a block on the page."""
    assert [where for where, _ in blocks("python") + blocks("py")] == []


@pytest.mark.parametrize(("where", "body"), INCLUDES, ids=[w for w, _ in INCLUDES])
def test_every_included_file_is_run_by_the_suite(where: str, body: str) -> None:
    path, fragment = included(body)
    assert path in RUN_BY_THE_SUITE, f"{where}: {path} is not run by the suite"
    assert fragment.strip(), f"{where}: an empty fragment"


def parse(code: str) -> ast.Module:
    """A fragment as a module: one with ``await`` or ``async with`` at the top level is
    wrapped in an ``async def``."""
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


@pytest.mark.parametrize(("where", "body"), INCLUDES, ids=[w for w, _ in INCLUDES])
def test_the_fragment_uses_only_names_that_exist(where: str, body: str) -> None:
    path, fragment = included(body)
    if path.suffix == ".py":
        assert problems(where, fragment) == []


def test_there_are_fragments_to_check() -> None:
    assert len(INCLUDES) >= 25


def test_the_check_sees_what_rotted() -> None:
    code = "async with trio_mqtt.open_clinet(url) as client:\n    await client.publish('t', retained=True)"
    assert problems("x", code) == [
        "x: trio_mqtt.open_clinet",
        "x: publish(retained=...)",
    ]


# Shell commands: the program each one runs, and the file whose text has its options.
PROGRAMS = {
    "bash scripts/bench": ROOT / "benchmarks" / "bench.py",
    "pytest": ROOT / "trio_mqtt" / "testing" / "pytest_plugin.py",
}
COMMANDS = [
    (where, line.split("#")[0].strip())
    for where, body in blocks("sh")
    for line in body.splitlines()
    if line.split("#")[0].strip()
]


@pytest.mark.parametrize(
    ("where", "command"), COMMANDS, ids=[f"{w}:{c[:30]}" for w, c in COMMANDS]
)
def test_the_shell_command_names_what_exists(where: str, command: str) -> None:
    words = shlex.split(command)
    if words[0] == "trio-mqtt":
        _parser().parse_args(words[1:])  # exits (SystemExit) on an unknown option
        return
    for word in words:
        # (.venv/ is made by the bootstrap)
        if word.endswith(".py") or word.startswith(("scripts/", "examples/")):
            path = word.removeprefix(".venv/bin/")
            assert (ROOT / path).exists(), f"{where}: {word} does not exist"
    if words[:2] == ["python", "-m"]:
        module = words[2].replace(".", "/")
        assert (ROOT / f"{module}.py").exists(), f"{where}: no module {words[2]}"
    program = next(
        (text for prefix, text in PROGRAMS.items() if command.startswith(prefix)), None
    )
    options = [word.split("=")[0] for word in words if word.startswith("--")]
    if program is not None:
        source = program.read_text()
        assert [o for o in options if o not in source] == [], where


def test_the_shell_check_sees_a_missing_file_and_option() -> None:
    with pytest.raises(AssertionError):
        test_the_shell_command_names_what_exists("x", "python examples/nothing.py")
    with pytest.raises(AssertionError):
        test_the_shell_command_names_what_exists("x", "bash scripts/bench --quik")
    with pytest.raises(SystemExit):
        test_the_shell_command_names_what_exists("x", "trio-mqtt pub URL t -x")
