"""The trio-mqtt command, driven as a subprocess against a real Mosquitto, with
mosquitto_pub and mosquitto_sub on the other end: both directions, binary payloads, --json,
exit codes, and Ctrl-C."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.integration.test_client import unique
from tests.mosquitto import Mosquitto, running_mosquitto

CLI = [sys.executable, "-m", "trio_mqtt"]
BINARY = bytes(range(256))


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, timeout=20)


def mosquitto_sub(
    port: int, topic: str, count: int, *extra: str
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["mosquitto_sub", "-p", str(port), "-t", topic, "-C", str(count), "-q", "1", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _subscribed(mosquitto: Mosquitto, client_id: str) -> None:
    """Wait until the broker logged the client's subscription ("<client id> <qos> <filter>",
    log_type subscribe): the broker's log is the only signal another process gives."""
    log = mosquitto.log
    assert log is not None
    for _ in range(2000):
        if any(
            line.split()[1:2] == [client_id] for line in log.read_text().splitlines()
        ):
            return
        subprocess.run(["sleep", "0.01"], check=True)
    raise AssertionError(f"{client_id} never subscribed")


def start_sub(
    broker: Mosquitto, prefix: str, *args: str
) -> tuple[subprocess.Popen[bytes], str]:
    """``trio-mqtt sub URL *args`` under a fresh client id, once its subscription is in place;
    the process and its client id."""
    client_id = unique(prefix)
    receiver = subprocess.Popen(
        [*CLI, "sub", broker.url, *args, "-i", client_id],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    _subscribed(broker, client_id)
    return receiver, client_id


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "trio-mqtt"
    assert script.exists() or shutil.which("trio-mqtt")


def test_pub_reaches_mosquitto_sub_with_a_binary_payload(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    topic = unique("cli/pub")
    payload_file = tmp_path / "payload.bin"
    payload_file.write_bytes(BINARY)
    client_id = unique("msub")
    receiver = mosquitto_sub(mosquitto.port, topic, 2, "-i", client_id)
    _subscribed(mosquitto, client_id)
    assert (
        run("pub", mosquitto.url, topic, "-f", str(payload_file), "-q", "1").returncode
        == 0
    )
    assert run("pub", mosquitto.url, topic, "text", "-q", "2").returncode == 0
    out, _ = receiver.communicate(timeout=20)
    assert out == BINARY + b"\n" + b"text\n"  # mosquitto_sub ends each payload with \n


def test_sub_prints_what_mosquitto_pub_sends(mosquitto: Mosquitto) -> None:
    topic = unique("cli/sub")
    receiver, _ = start_sub(mosquitto, "tsub", topic, "-v", "-C", "2", "-q", "1")
    for message in ("one", "two"):
        subprocess.run(
            ["mosquitto_pub", "-p", str(mosquitto.port), "-t", topic, "-m", message, "-q", "1"],
            check=True, timeout=10,
        )  # fmt: skip
    out, err = receiver.communicate(timeout=20)
    assert receiver.returncode == 0, err
    assert out == f"{topic} one\n{topic} two\n".encode()


def test_sub_json_has_text_or_base64_and_the_properties(mosquitto: Mosquitto) -> None:
    topic = unique("cli/json")
    receiver, _ = start_sub(mosquitto, "jsub", topic, "--json", "-C", "2", "-q", "1")
    assert run(
        "pub", mosquitto.url, topic, "grüße", "-q", "1", "--content-type", "text/plain",
        "-D", "unit=C", "-D", "unit=F",
    ).returncode == 0  # fmt: skip
    subprocess.run(
        ["mosquitto_pub", "-p", str(mosquitto.port), "-t", topic, "-s", "-q", "1"],
        input=BINARY, check=True, timeout=10,
    )  # fmt: skip
    out, err = receiver.communicate(timeout=20)
    assert receiver.returncode == 0, err
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["payload"] == "grüße"
    assert first["properties"]["content_type"] == "text/plain"
    assert first["properties"]["user_properties"] == [["unit", "C"], ["unit", "F"]]
    assert (first["topic"], first["qos"], first["retain"]) == (topic, 1, False)
    assert base64.b64decode(second["payload_base64"]) == BINARY


def test_pub_one_message_per_stdin_line(mosquitto: Mosquitto) -> None:
    topic = unique("cli/lines")
    client_id = unique("lsub")
    receiver = mosquitto_sub(mosquitto.port, topic, 3, "-i", client_id)
    _subscribed(mosquitto, client_id)
    result = run("pub", mosquitto.url, topic, "-l", "-q", "1", stdin=b"a\nb\nc\n")
    assert result.returncode == 0, result.stderr
    out, _ = receiver.communicate(timeout=20)
    assert out == b"a\nb\nc\n"


def test_exit_codes_and_one_line_on_stderr(
    mosquitto: Mosquitto, mosquitto_auth: Mosquitto
) -> None:
    unreachable = run("pub", "mqtt://127.0.0.1:1", "t", "x")
    refused = run("pub", mosquitto_auth.url, "t", "x", "-u", "alice", "-P", "wrong")
    usage = run("pub", mosquitto.url, "t")  # no message
    assert (unreachable.returncode, refused.returncode, usage.returncode) == (4, 3, 2)
    for result in (unreachable, refused, usage):
        assert len(result.stderr.decode().strip().splitlines()) == 1
    assert b"wrong" not in refused.stderr  # the password is never echoed
    env = {**os.environ, "TRIO_MQTT_PASSWORD": "wonderland"}
    ok = subprocess.run(
        [*CLI, "pub", mosquitto_auth.url, "t", "x", "-u", "alice"],
        env=env, capture_output=True, timeout=20,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr


def test_ctrl_c_ends_sub_with_a_disconnect(mosquitto: Mosquitto) -> None:
    receiver, client_id = start_sub(mosquitto, "ctrlc", unique("cli/ctrlc"))
    receiver.send_signal(signal.SIGINT)
    _, err = receiver.communicate(timeout=20)
    assert receiver.returncode == 130, err
    assert mosquitto.log is not None
    for _ in range(500):
        if f"Client {client_id} disconnected." in mosquitto.log.read_text():
            break
        subprocess.run(["sleep", "0.01"])
    assert (
        f"Client {client_id} disconnected." in mosquitto.log.read_text()
    )  # not "closed"


def test_sub_stays_up_across_a_broker_restart(tmp_path: Path) -> None:
    """The broker restarts under a running `trio-mqtt sub`: it reconnects, subscribes again,
    and prints what is published after."""
    with running_mosquitto(tmp_path) as broker:
        topic = unique("cli/restart")
        receiver, client_id = start_sub(broker, "rsub", topic, "-C", "2", "-q", "1")
        assert run("pub", broker.url, topic, "before", "-q", "1").returncode == 0
        broker.log.write_text("")  # type: ignore[union-attr]  # wait for the new subscription
        broker.restart()
        _subscribed(broker, client_id)
        assert run("pub", broker.url, topic, "after", "-q", "1").returncode == 0
        out, err = receiver.communicate(timeout=30)
    assert receiver.returncode == 0, err
    assert out == b"before\nafter\n"
