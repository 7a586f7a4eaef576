"""Every example runs against a real broker."""

from __future__ import annotations

import contextlib
import functools
import re
import runpy
import ssl
from pathlib import Path

import pytest
import trio
import trustme

from tests.ejabberd import PASSWORD, USERNAME, Ejabberd
from tests.io.scripted import ScriptedBroker
from tests.io.test_enhanced_auth import scram_exchange
from tests.mosquitto import Mosquitto, TLSFiles
from tests.scram_server import ScramServer
from trio_mqtt import ProtocolVersion
from trio_mqtt.lowlevel import Auth, Connect, Disconnect

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


# The code on the docs pages: examples/snippets/, shown there by literalinclude.
SNIPPETS = Path(__file__).parents[2] / "examples" / "snippets"


@pytest.mark.parametrize(
    "path",
    [path for path in sorted(SNIPPETS.glob("*.py")) if path.name != "transports.py"],
    ids=lambda p: p.name,
)
def test_the_docs_code_runs(
    path: Path, mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    module = runpy.run_path(str(path))
    trio.run(module["main"], mosquitto.url)
    assert capsys.readouterr().out.strip().endswith("done")


async def test_the_docs_tls_code_runs(
    mosquitto_tls: Mosquitto, tls_files: TLSFiles, ca: trustme.CA, tmp_path: Path
) -> None:
    """docs/transports.md: our own CA with a client certificate, and an SSLContext."""
    client = ca.issue_cert("client.example")
    client.cert_chain_pems[0].write_to_path(tmp_path / "client.pem")
    client.private_key_pem.write_to_path(tmp_path / "client.key")
    context = ssl.create_default_context(cafile=str(tls_files.ca_pem))
    snippets = runpy.run_path(str(SNIPPETS / "transports.py"))
    on_tls_port = f"on port {mosquitto_tls.tls_port}."
    assert mosquitto_tls.log is not None
    before = mosquitto_tls.log.read_text().count(on_tls_port)
    with trio.fail_after(10):
        await snippets["connect_tls"](
            f"mqtts://localhost:{mosquitto_tls.tls_port}",
            str(tls_files.ca_pem),
            str(tmp_path / "client.pem"),
            str(tmp_path / "client.key"),
            context,
        )
    # both blocks connected over TLS (open_client raises if not)
    assert mosquitto_tls.log.read_text().count(on_tls_port) == before + 2


async def test_the_docs_websocket_code_runs(ejabberd: Ejabberd) -> None:
    """docs/transports.md: a header on the WebSocket upgrade request."""
    snippets = runpy.run_path(str(SNIPPETS / "transports.py"))
    url = f"ws://{USERNAME}:{PASSWORD}@127.0.0.1:{ejabberd.ws_port}/mqtt"
    with trio.fail_after(10):
        await snippets["connect_websocket"](url, "a-token")


async def test_the_docs_scram_code_runs() -> None:
    """docs/transports.md: SCRAM, then re-authentication on the live connection, against the
    scripted broker with a SCRAM server (no broker here has SCRAM), reached over TCP."""
    server = ScramServer("alice", "wonderland")
    broker = ScriptedBroker(ProtocolVersion.V5)
    exchanges = 0

    async def script() -> None:
        nonlocal exchanges
        connect = await broker.expect(Connect)
        exchanges += await scram_exchange(broker, server, connect, connect=True)
        start = await broker.expect(Auth)
        exchanges += await scram_exchange(broker, server, start, connect=False)
        await broker.expect(Disconnect)

    async def relay(tcp: trio.SocketStream) -> None:
        peer = await broker.factory()

        async def pump(source: trio.abc.Stream, sink: trio.abc.Stream) -> None:
            while data := await source.receive_some():
                await sink.send_all(data)

        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pump, peer, tcp)
                await pump(tcp, peer)
                nursery.cancel_scope.cancel()

    snippets = runpy.run_path(str(SNIPPETS / "transports.py"))
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(trio.serve_tcp, relay, 0, host="127.0.0.1")
            )
            nursery.start_soon(script)
            port = listeners[0].socket.getsockname()[1]
            await snippets["connect_scram"](f"mqtt://127.0.0.1:{port}")
            nursery.cancel_scope.cancel()
    assert exchanges == 2


def test_the_readme_code_runs(
    mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    """README.md's program (GitHub cannot include files), against our broker."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    (code,) = re.findall(r"^```python\n(.*?)^```", readme, re.M | re.S)
    assert '"mqtt://localhost:1883"' in code
    exec(code.replace('"mqtt://localhost:1883"', repr(mosquitto.url)), {})
    assert "home/livingroom/temperature b'21.5'" in capsys.readouterr().out
