"""Every example runs against a real broker."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
import trio

from tests.mosquitto import Mosquitto

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(
    path: Path, mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    module = runpy.run_path(str(path))
    trio.run(module["main"], mosquitto.url)
    out = capsys.readouterr().out
    assert out.strip().endswith("done")


def test_sensor_network_output(
    mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    module = runpy.run_path(str(EXAMPLES[0].parent / "sensor_network.py"))
    trio.run(module["main"], mosquitto.url)
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        f"app      <- home/livingroom/temperature = {v} (acked: SUCCESS)"
        for v in ("21.5", "21.7", "22.0")
    ]
    assert (
        lines[3] == "late joiner <- home/livingroom/temperature = 22.0 (retained=True)"
    )
