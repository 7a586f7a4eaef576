"""The layering, checked on the source: the protocol core does no I/O (ARCHITECTURE B.4), and
every import in the package goes down the layer map (ARCHITECTURE §3-4; #15 will regroup it)."""

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


# The whole layer map (ARCHITECTURE §3-4), bottom first: a module may import only modules of a
# lower rank, so that the file list reads as the layers and no import goes upward. A module
# missing here fails the test: place it in the map when you add it.
LAYERS: list[tuple[str, list[str]]] = [
    ("vocabulary", ["_version", "_construct", "_enums", "_exceptions", "_topics"]),
    (
        "sans-IO core",
        [
            "_sansio._fast", "_sansio._wire", "_sansio._traffic", "_sansio._properties", "_sansio._packets",
            "_sansio._events", "_sansio._session", "_sansio._fields", "_sansio._encode",
            "_sansio._publish_decoder", "_sansio._decode", "_sansio._codec",
            "_sansio._limits", "_sansio._outgoing", "_sansio._keepalive", "_sansio._inbound",
            "_sansio._aliases",
            "_sansio._outbound", "_sansio._requests", "_sansio._authflow", "_sansio._poison",
            "_sansio._connection",
            "_sansio",
        ],
    ),
    (
        "values and policy",
        [
            "_config", "_tls", "_auth", "_message", "_status", "_statistics", "_options",
        ],
    ),
    (
        "Trio I/O (one connection)",
        [
            "_io._wakeups", "_io._ws", "_io._transports", "_io._stream", "_io._contract",
            "_io._trace", "_io._tasks", "_io._sender", "_io._handshake", "_io._link", "_io",
        ],
    ),
    (
        "the engine (one client, across connections)",
        [
            "_engine._stores", "_engine._queue_journal", "_engine._inbox", "_engine._metrics",
            "_engine._router",
            "_engine._outbox", "_engine._subscribing", "_engine._responses", "_engine._supervisor",
            "_engine._core", "_engine._snapshot", "_engine",
        ],
    ),
    (
        "public objects",
        ["_subscription", "_pipeline", "_service", "_client", "_hooks", "_open"],
    ),
    ("namespaces", ["lowlevel", "abc", "__init__", "otel"]),
    ("the command line", ["_cli", "__main__"]),
    (
        "the test double (trio_mqtt.testing)",
        [
            "testing._state", "testing._client", "testing._routing", "testing._broker",
            "testing", "testing.pytest_plugin",
        ],
    ),
]  # fmt: skip
RANK = {
    module: rank
    for rank, module in enumerate(m for _, modules in LAYERS for m in modules)
}


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _package_imports(path: pathlib.Path) -> set[str]:
    """The package modules ``path`` imports (relative or ``trio_mqtt.``), wherever the
    import stands (TYPE_CHECKING blocks and functions included)."""
    package = list(path.parent.relative_to(PACKAGE).parts)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package[: len(package) - (node.level - 1)]
            target = [*base, *(node.module.split(".") if node.module else [])]
        elif node.module and node.module.split(".")[0] == "trio_mqtt":
            target = node.module.split(".")[1:] or ["__init__"]
        else:
            continue
        names = [".".join(target)] if target else []
        if not node.module:  # "from . import x": x are modules
            names = [".".join([*target, a.name]) for a in node.names]
        found.update(n for n in names if n)
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_imports_go_down_the_layer_map(path: pathlib.Path) -> None:
    name = _module_name(path) or "__init__"
    assert name in RANK, f"{name} is not in the layer map (tests/unit/test_layering.py)"
    targets = _package_imports(path)
    unknown = sorted(t for t in targets if t not in RANK)
    assert unknown == [], (
        f"{name} imports modules missing from the layer map: {unknown}"
    )
    upward = sorted(t for t in targets if RANK[t] >= RANK[name])
    assert upward == [], f"{name} imports from its own layer's right or above: {upward}"


def test_the_layer_map_check_sees_the_imports() -> None:
    assert "_sansio._codec" in _package_imports(PACKAGE / "_engine" / "_stores.py")
    assert _package_imports(PACKAGE / "_enums.py") == set()
    assert _package_imports(PACKAGE / "_sansio" / "_decode.py") >= {
        "_enums",
        "_exceptions",
    }
    assert _package_imports(PACKAGE / "__init__.py") >= {"_client", "_open"}
    assert (
        RANK["_client"]
        > RANK["_engine._supervisor"]
        > RANK["_io._link"]
        > RANK["_sansio._connection"]
    )


# The protocol machine has one owner: the link, which makes it, and runs the CONNECT handshake on
# it before its tasks start (ARCHITECTURE: one owner per piece of state).
MACHINE_USERS = {"_io._link", "_io._handshake"}


def test_only_the_link_drives_the_protocol_machine() -> None:
    users = {
        _module_name(path)
        for path in MODULES
        if "_sansio._connection" in _package_imports(path)
        and not _module_name(path).startswith("_sansio")
    }
    assert users == MACHINE_USERS


def test_only_the_link_module_makes_a_machine() -> None:
    makers = {
        _module_name(path)
        for path in MODULES
        if "MQTTConnection(" in path.read_text()
        and not _module_name(path).startswith("_sansio")
    }
    assert makers == {"_io._link"}


def _private_reaches(path: pathlib.Path) -> list[str]:
    """``x._name`` where ``x`` is neither ``self``/``cls`` nor a class of the same module:
    one object reaching into another's private state. ``_create`` (the package's way to make
    the objects it gives out, trio's NoPublicConstructor) is the one sanctioned exception."""
    tree = ast.parse(path.read_text())
    own = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and node.attr != "_create"
            and isinstance(node.value, ast.Name)
            and node.value.id not in {"self", "cls", *own}
        ):
            found.append(f"{node.value.id}.{node.attr} (line {node.lineno})")
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_no_object_reaches_into_another(path: pathlib.Path) -> None:
    assert _private_reaches(path) == []


def test_the_reach_check_sees_a_reach(tmp_path: pathlib.Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "class A:\n    def f(self, b):\n        return b._x, self._y, A._z, B._create\n"
    )
    assert _private_reaches(module) == ["b._x (line 3)"]
