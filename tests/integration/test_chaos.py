"""Issue #4's guarantees under real trouble: connections cut at random, the broker restarted,
the publishing process killed. Figures: ``python -m tests.chaos`` (see tests/chaos.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import trio

import trio_mqtt
from tests.chaos import Report, check, persistent, random_cuts, run_chaos
from tests.child import child, read_line
from tests.integration.test_client import VERSIONS, unique
from tests.mosquitto import Mosquitto
from tests.proxy import Proxy, open_proxy
from trio_mqtt import ProtocolVersion, SQLiteSessionStore

COUNT = 5000


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


async def kill_a_publisher(
    mosquitto: Mosquitto,
    version: ProtocolVersion,
    store: Path,
    count: int,
    trouble: Callable[[Proxy], None],
    *,
    offline: bool,
) -> dict[str, list[bytes]]:
    """Run tests/crashing_publisher.py behind a proxy, apply ``trouble`` to the proxy once it
    is connected, have it publish ``count`` QoS 1 and QoS 2 messages, SIGKILL it once they
    have all reached the broker (``last`` arrived), or, ``offline``, once they were all
    accepted (it printed ``queued``), then let a new process
    with the same store finish. Returns the payloads a subscriber received, per QoS."""
    base, client_id = unique("crash"), unique("crash-pub")
    options = {"protocol": version, **persistent(version)}
    received: dict[str, list[bytes]] = {"1": [], "2": []}
    async with (
        trio_mqtt.open_client(mosquitto.url, client_id=unique("crash-sub"), **options) as sub,  # type: ignore[arg-type]
        sub.subscribe(f"{base}/+", qos=2) as messages,
        open_proxy(mosquitto.port) as proxy,
    ):  # fmt: skip
        async with child(
            "tests.crashing_publisher", proxy.url, store, client_id, base, count,
            int(version), ready=b"connected",
        ) as process:  # fmt: skip
            assert process.stdin is not None
            assert process.stdout is not None
            trouble(proxy)
            await process.stdin.send_all(b"go\n")
            if offline:
                assert await read_line(process.stdout) == b"queued"
            else:
                async for (
                    message
                ) in messages:  # until every PUBLISH has reached the broker
                    if message.payload == b"last":
                        break
                    received[message.topic[-1]].append(message.payload)
            process.kill()
            assert await process.wait() == -9
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
    return received


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_new_process_finishes_what_a_killed_one_left(
    mosquitto: Mosquitto, version: ProtocolVersion, tmp_path: Path
) -> None:
    """A publisher with a file-backed store is killed (SIGKILL) with every message
    unacknowledged; a new process with the same client id and store resends them: QoS 1 all
    arrive, QoS 2 all arrive exactly once (the broker holds them until the new process's PUBREL)."""
    count = 300

    def no_acknowledgements(proxy: Proxy) -> None:
        proxy.blackhole(down=True)  # no acknowledgement ever reaches it

    with trio.fail_after(60):
        received = await kill_a_publisher(
            mosquitto,
            version,
            tmp_path / "session.db",
            count,
            no_acknowledgements,
            offline=False,
        )
    numbers = [b"%d" % n for n in range(count)]
    # all, in order; duplicates allowed
    assert list(dict.fromkeys(received["1"])) == numbers
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

    def cut_off(proxy: Proxy) -> None:
        proxy.refuse()
        proxy.cut()  # offline from here: the publishes wait in its queue

    with trio.fail_after(60):
        received = await kill_a_publisher(
            mosquitto, version, tmp_path / "session.db", count, cut_off, offline=True
        )
    numbers = [b"%d" % n for n in range(count)]
    assert list(dict.fromkeys(received["1"])) == numbers  # all, in order
    assert received["2"] == numbers  # all, exactly once, in order
