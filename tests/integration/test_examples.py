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


def test_the_demo_tells_the_rest_of_the_introduction(
    mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    """Last Will, the QoS 2 command channel and the persistent-session consumer."""
    module = runpy.run_path(str(EXAMPLES[0].parent / "sensor_network.py"))
    trio.run(module["main"], mosquitto.url)
    lines = capsys.readouterr().out.splitlines()
    assert lines[4:10] == [
        "  * monitor sees sensor-2: online",
        "  * sensor-2 is gone; its Last Will tells the monitor: offline",
        "  * heater set to 20 (QoS 2: exactly once)",
        "  * heater set to 21 (QoS 2: exactly once)",
        "  * the archiver was away while the meter published 3 readings",
        "  * back (session present: True), it gets them all: ['1.2', '1.3', '1.5']",
    ]
