"""Issue #4's guarantees under real trouble: connections cut at random, the broker restarted,
the publishing process killed. Figures: ``python -m tests.chaos`` (see tests/chaos.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trio

import trio_mqtt
from tests.chaos import Report, check, persistent, random_cuts, run_chaos
from tests.integration.test_client import VERSIONS, unique
from tests.mosquitto import Mosquitto
from tests.proxy import Proxy, open_proxy
from trio_mqtt import ProtocolVersion, SQLiteSessionStore

COUNT = 5000
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("version", VERSIONS)
async def test_random_cuts(mosquitto: Mosquitto, version: ProtocolVersion) -> None:
    """5,000 QoS 1 and 5,000 QoS 2 messages while both proxies cut every 100-400 ms (seeded)."""
    with trio.fail_after(120):
        report = await run_chaos(
            mosquitto.port, version, count=COUNT, trouble=random_cuts(7)
        )
    print(report.line())
    check(report, COUNT)
    assert report.cuts >= 2  # the trouble happened (a cut within 0.4 s, per proxy)
    assert report.publisher_reconnects
    assert report.subscriber_reconnects


@pytest.mark.parametrize("version", VERSIONS)
async def test_broker_restart_mid_stream(
    mosquitto_persistent: Mosquitto, version: ProtocolVersion
) -> None:
    """Mosquitto (persistence on) stops and starts again two thirds of the way through: every
    publish() returns, QoS 1 arrives complete and in order, QoS 2 exactly once and in order.

    Debian's Mosquitto 2.0.11 makes the QoS 2 part hard: after the restart it re-sends as PUBLISH
    (DUP=1) flows it had already released with PUBREL before stopping (section 4.3.3 forbids it),
    before it had confirmed our PUBCOMP. Before the client remembered completed flows until the
    broker confirmed them (``ReleasedQoS2``), every run here delivered 1-3 of them twice.
    """
    broker = mosquitto_persistent

    async def restart(pub: Proxy, sub: Proxy, report: Report) -> None:
        await report.wait_received(2 * COUNT // 3)
        await trio.to_thread.run_sync(broker.stop)
        await trio.to_thread.run_sync(broker.start)

    with trio.fail_after(120):
        report = await run_chaos(broker.port, version, count=COUNT, trouble=restart)
    print(report.line())
    check(report, COUNT)
    assert report.publisher_reconnects >= 1
    assert report.subscriber_reconnects >= 1


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_new_process_finishes_what_a_killed_one_left(
    mosquitto: Mosquitto, version: ProtocolVersion, tmp_path: Path
) -> None:
    """A publisher with a file-backed store is killed (SIGKILL) with every message
    unacknowledged; a new process with the same client id and store resends them: QoS 1 all
    arrive, QoS 2 all arrive exactly once (the broker holds them until the new process's PUBREL)."""
    count = 300
    base = unique("crash")
    client_id = unique("crash-pub")
    store = tmp_path / "session.db"
    options = {"protocol": version, **persistent(version)}
    received: dict[str, list[bytes]] = {"1": [], "2": []}
    with trio.fail_after(60):
        async with (
            trio_mqtt.open_client(mosquitto.url, client_id=unique("crash-sub"), **options) as sub,  # type: ignore[arg-type]
            sub.subscribe(f"{base}/+", qos=2) as messages,
            open_proxy(mosquitto.port) as proxy,
        ):  # fmt: skip
            command = [
                sys.executable, "-m", "tests.crashing_publisher", proxy.url, str(store),
                client_id, base, str(count), str(int(version)),
            ]  # fmt: skip
            process = await trio.lowlevel.open_process(
                command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
            try:
                assert process.stdout is not None
                assert process.stdin is not None
                assert (await process.stdout.receive_some(100)).strip() == b"connected"
                proxy.blackhole(down=True)  # no acknowledgement ever reaches it
                await process.stdin.send_all(b"go\n")
                async for (
                    message
                ) in messages:  # until every PUBLISH has reached the broker
                    if message.payload == b"last":
                        break
                    received[message.topic[-1]].append(message.payload)
            finally:
                process.kill()
                await process.wait()
            assert process.returncode == -9
            assert (
                received["2"] == []
            )  # Mosquitto forwards QoS 2 on PUBREL, which never came
            async with trio_mqtt.open_client(
                mosquitto.url, client_id=client_id, session_store=SQLiteSessionStore(store),
                **options,  # type: ignore[arg-type]
            ) as again:  # fmt: skip
                await again.publish(
                    f"{base}/2", b"end", qos=2
                )  # sent after the resent session
            async for message in messages:
                if message.payload == b"end":
                    break
                if message.payload != b"last":  # resent too
                    received[message.topic[-1]].append(message.payload)
    numbers = [b"%d" % n for n in range(count)]
    assert (
        list(dict.fromkeys(received["1"])) == numbers
    )  # all, in order; duplicates allowed
    assert received["2"] == numbers  # all, exactly once, in order


@pytest.mark.parametrize("version", VERSIONS)
async def test_publishes_queued_offline_survive_a_killed_process(
    mosquitto: Mosquitto, version: ProtocolVersion, tmp_path: Path
) -> None:
    """With a session store, a QoS 1/2 publish is durable once publish() accepted it, even
    while it waits in the offline queue (no packet id, nothing sent): the publisher is cut off,
    queues its messages, is killed (SIGKILL), and a new process with the same store sends
    them all, QoS 2 exactly once. Before, every queued one was lost."""
    count = 200
    base = unique("offline-crash")
    client_id = unique("offline-pub")
    store = tmp_path / "session.db"
    options = {"protocol": version, **persistent(version)}
    received: dict[str, list[bytes]] = {"1": [], "2": []}
    with trio.fail_after(60):
        async with (
            trio_mqtt.open_client(mosquitto.url, client_id=unique("offline-sub"), **options) as sub,  # type: ignore[arg-type]
            sub.subscribe(f"{base}/+", qos=2) as messages,
            open_proxy(mosquitto.port) as proxy,
        ):  # fmt: skip
            command = [
                sys.executable, "-m", "tests.crashing_publisher", proxy.url, str(store),
                client_id, base, str(count), str(int(version)),
            ]  # fmt: skip
            process = await trio.lowlevel.open_process(
                command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
            try:
                assert process.stdout is not None
                assert process.stdin is not None
                assert (await process.stdout.receive_some(100)).strip() == b"connected"
                proxy.refuse()
                proxy.cut()  # offline from here: the publishes wait in its queue
                await process.stdin.send_all(b"go\n")
                assert (await process.stdout.receive_some(100)).strip() == b"queued"
            finally:
                process.kill()
                await process.wait()
            assert process.returncode == -9
            async with trio_mqtt.open_client(
                mosquitto.url, client_id=client_id, session_store=SQLiteSessionStore(store),
                **options,  # type: ignore[arg-type]
            ) as again:  # fmt: skip
                await again.publish(f"{base}/2", b"end", qos=2)  # after the queued ones
            async for message in messages:
                if message.payload == b"end":
                    break
                if message.payload != b"last":
                    received[message.topic[-1]].append(message.payload)
    numbers = [b"%d" % n for n in range(count)]
    assert list(dict.fromkeys(received["1"])) == numbers  # all, in order
    assert received["2"] == numbers  # all, exactly once, in order
