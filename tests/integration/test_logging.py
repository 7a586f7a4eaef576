"""Logging people can use (real Mosquitto): public logger names, the opt-in packet trace at
DEBUG with nothing secret in it, and a reconnect that DEBUG tells the whole story of."""

from __future__ import annotations

import logging

import pytest
import trio

import trio_mqtt
from tests.chaos import persistent
from tests.integration.test_client import unique
from tests.mosquitto import Mosquitto
from tests.proxy import open_proxy
from trio_mqtt import ProtocolVersion, ReconnectPolicy, Will

#: The documented logger names (docs/errors.md, "Logging").
PUBLIC_LOGGERS = {"trio_mqtt", "trio_mqtt.packets"}


def _trace(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "trio_mqtt.packets"]


@pytest.mark.parametrize("version", [ProtocolVersion.V5, ProtocolVersion.V311])
async def test_the_packet_trace_shows_each_packet_and_nothing_secret(
    mosquitto_auth: Mosquitto,
    caplog: pytest.LogCaptureFixture,
    version: ProtocolVersion,
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_mqtt")
    topic = unique("trace")
    will = Will(topic + "/will", b"will-secret-bytes")
    with trio.fail_after(10):
        async with (
            trio_mqtt.open_client(
                mosquitto_auth.url, client_id="tracer", protocol=version,
                username="alice", password="wonderland", will=will,
            ) as client,
            client.subscribe(topic, qos=1) as messages,
        ):  # fmt: skip
            await client.publish(topic, b"payload-secret-bytes", qos=1)
            assert (await messages.receive()).payload == b"payload-secret-bytes"
    trace = _trace(caplog)
    expected = [
        "tracer >> CONNECT",
        "tracer << CONNACK session_present=False reason=SUCCESS (0x00)",
        "tracer >> SUBSCRIBE id=",
        "tracer << SUBACK id=",
        f"tracer >> PUBLISH id=2 qos=1 topic='{topic}' payload=20 bytes",
        f"tracer << PUBLISH id=1 qos=1 topic='{topic}' payload=20 bytes",
        "tracer << PUBACK id=2",
        "tracer >> PUBACK id=1",
        "tracer >> DISCONNECT",
    ]
    for start in expected:
        assert any(line.startswith(start) for line in trace), (start, trace)
    connect = next(line for line in trace if ">> CONNECT" in line)
    assert "username password" in connect  # that they were sent; never what they are
    everything = "\n".join(r.getMessage() for r in caplog.records)
    for secret in ("alice", "wonderland", "payload-secret-bytes", "will-secret-bytes"):
        assert secret not in everything


async def test_no_trace_unless_asked(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    """The trace is opt-in: with ``trio_mqtt.packets`` at INFO (the connection lifecycle at
    DEBUG), no packet line is made."""
    caplog.set_level(logging.DEBUG, logger="trio_mqtt")
    caplog.set_level(logging.INFO, logger="trio_mqtt.packets")
    with trio.fail_after(10):
        async with trio_mqtt.open_client(mosquitto.url) as client:
            await client.publish(unique("quiet"), b"x", qos=1)
    assert _trace(caplog) == []
    assert any(r.name == "trio_mqtt" for r in caplog.records)


async def test_a_reconnect_at_debug_tells_the_whole_story(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    """Why the link died, the attempt, what was resent (DUP), and the acknowledgement that
    ended it, in that order, under the documented logger names only."""
    caplog.set_level(logging.DEBUG, logger="trio_mqtt")
    version = ProtocolVersion.V5
    topic = unique("story")
    policy = ReconnectPolicy(initial_delay=0.05, max_delay=0.2)
    with trio.fail_after(15):
        async with (
            open_proxy(mosquitto.port) as proxy,
            trio_mqtt.open_client(
                proxy.url, client_id=unique("story"), protocol=version, reconnect=policy,
                **persistent(version),  # type: ignore[arg-type]
            ) as client,
            trio.open_nursery() as nursery,
        ):  # fmt: skip
            proxy.blackhole(down=True)  # the PUBACK will not reach us
            nursery.start_soon(lambda: client.publish(topic, b"again", qos=1))
            await proxy.wait_dropped_down(4)  # the broker did acknowledge it
            proxy.blackhole()
            assert proxy.cut() == 1
    lines = [r.getMessage() for r in caplog.records]
    story = [
        "link failed: the broker closed the connection",
        "connection lost: the broker closed the connection",
        "reconnecting to",
        ">> CONNECT",
        "<< CONNACK session_present=True",
        "connected to",
        f">> PUBLISH id=1 qos=1 dup topic='{topic}' payload=5 bytes",
        "<< PUBACK id=1",
    ]
    position = 0
    for step in story:
        found = next((i for i in range(position, len(lines)) if step in lines[i]), None)
        assert found is not None, (step, lines[position:])
        position = found + 1
    assert any("resending 1 unacknowledged" in line for line in lines)
    assert {r.name for r in caplog.records} <= PUBLIC_LOGGERS
    made = {
        name for name in logging.root.manager.loggerDict if name.startswith("trio_mqtt")
    }
    assert made <= PUBLIC_LOGGERS
