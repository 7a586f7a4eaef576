"""The protocol core does no I/O: an AST check of every import in the lower layers (ARCHITECTURE B.4)."""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "trio_mqtt"
FORBIDDEN = {
    "trio",
    "trio_websocket",
    "socket",
    "ssl",
    "asyncio",
    "threading",
    "time",
    "random",
    "logging",
    "sqlite3",
    "select",
    "selectors",
}
CORE = sorted(
    [
        *PACKAGE.glob("_sansio/*.py"),
        PACKAGE / "_enums.py",
        PACKAGE / "_exceptions.py",
        PACKAGE / "_topics.py",
    ]
)


def _imports(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_core_module_does_no_io(path: pathlib.Path) -> None:
    assert _imports(path) & FORBIDDEN == set()


def test_the_check_sees_imports(tmp_path: pathlib.Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import os.path\nfrom time import monotonic\nfrom . import sibling\n"
    )
    assert _imports(module) == {"os", "time"}
    assert len(CORE) >= 8
