"""The API reference (docs/reference/) documents exactly the public names: a name added to
``__all__`` without a page, or a page for a name that is gone, fails here (and the docs build
with -W fails on a broken reference)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import trio_mqtt
import trio_mqtt.lowlevel
import trio_mqtt.otel
import trio_mqtt.testing

REFERENCE = Path(__file__).parents[2] / "docs" / "reference"
DIRECTIVE = re.compile(
    r"^\.\. auto(?:class|function|data):: ([\w.]+)$|^\.\. data:: ([\w.]+)$", re.M
)


def documented() -> set[str]:
    names = set()
    for page in REFERENCE.glob("*.md"):
        for match in DIRECTIVE.finditer(page.read_text()):
            names.add(match.group(1) or match.group(2))
    return names


@pytest.mark.parametrize(
    "module",
    [trio_mqtt, trio_mqtt.otel, trio_mqtt.testing, trio_mqtt.lowlevel],
    ids=lambda m: m.__name__,
)
def test_every_public_name_has_its_reference_entry(module: object) -> None:
    name = module.__name__  # type: ignore[attr-defined]
    public = {f"{name}.{n}" for n in module.__all__}  # type: ignore[attr-defined]
    mine = {d for d in documented() if d.rsplit(".", 1)[0] == name}
    assert public == mine
