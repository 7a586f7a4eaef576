"""The pytest plugin as a user gets it: a fresh project with no conftest, only pytest-trio and
trio-mqtt installed; its tests run on the in-process broker, and with --mqtt-broker-url the
same tests run against a real Mosquitto (those that need the double's own hooks are
skipped)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.mosquitto import Mosquitto

USER_TESTS = textwrap.dedent(
    """
    import pytest
    import trio_mqtt

    pytestmark = pytest.mark.mqtt_versions

    async def test_round_trip(mqtt_client):
        async with mqtt_client.subscribe("user/t", qos=1) as messages:
            await mqtt_client.publish("user/t", b"hello", qos=1)
            assert (await messages.receive()).payload == b"hello"

    async def test_uses_the_double(mqtt_broker, mqtt_connect):
        async with mqtt_connect(client_id="me"):
            assert mqtt_broker.clients == ["me"]
    """
)


def _run(project: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, str(project)],
        cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return result.stdout + result.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\ntrio_mode = true\n")
    return tmp_path


def test_the_fixtures_need_no_configuration(project: Path) -> None:
    out = _run(project)
    assert "4 passed" in out, out


def test_the_same_tests_run_against_a_real_broker(
    project: Path, mosquitto: Mosquitto
) -> None:
    out = _run(project, f"--mqtt-broker-url={mosquitto.url}")
    assert "2 passed, 2 skipped" in out, out
