"""The chaos run: numbered QoS 1 and QoS 2 messages from a publisher to a subscriber on a
persistent session, both reconnecting through their own fault-injecting proxy, while something
breaks the connections (random cuts, a broker restart, ...).

What it checks is what issue #4 promises: every ``publish()`` returns normally; QoS 1 arrives
complete (duplicates allowed, counted); QoS 2 arrives complete and exactly once; the order of
first arrivals is the publish order, per topic and QoS [MQTT-4.6.0-6].

``python -m tests.chaos [SEED [COUNT [LOW HIGH]]]`` runs it against a private Mosquitto (both
protocol versions, cuts every LOW to HIGH seconds) and prints the figures.
"""

from __future__ import annotations

import functools
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import attrs
import trio

import trio_mqtt
from tests.mosquitto import running_mosquitto
from tests.proxy import Proxy, open_proxy
from trio_mqtt import MQTTError, ProtocolVersion, ReconnectPolicy
from trio_mqtt.lowlevel import PacketReader, Publish

POLICY = ReconnectPolicy(initial_delay=0.02, max_delay=0.2)
WINDOW = 100  # publishes in flight per QoS
END = b"end"


class FlowTrace:
    """The QoS 2 packets crossing the subscriber's proxy, per message, to explain a duplicate:
    ``trace.history(n)`` lists (connection, direction, packet, packet id, DUP) for message n."""

    def __init__(self, version: ProtocolVersion, topic: str) -> None:
        self.version = version
        self.topic = topic
        self.readers: dict[tuple[int, bool], PacketReader] = {}
        self.by_id: dict[int, int] = {}  # packet id -> message number, latest
        self.events: list[tuple[int, int, str, str, int, bool]] = []

    def __call__(self, number: int, upward: bool, data: bytes) -> None:
        reader = self.readers.setdefault(
            (number, upward), PacketReader(version=self.version)
        )
        try:
            packets = reader.feed(data)
        except MQTTError:
            return
        for packet in packets:
            name = type(packet).__name__
            packet_id = getattr(packet, "packet_id", None)
            if isinstance(packet, Publish):
                if (
                    packet.qos != 2
                    or packet.topic != self.topic
                    or packet.payload == END
                ):
                    continue
                self.by_id[packet.packet_id or 0] = int(packet.payload)
            elif (
                name not in ("PubRec", "PubRel", "PubComp")
                or packet_id not in self.by_id
            ):
                continue
            message = self.by_id[packet_id or 0]
            dup = bool(getattr(packet, "dup", False))
            self.events.append(
                (message, number, "up" if upward else "down", name, packet_id or 0, dup)
            )

    def history(self, message: int) -> list[tuple[int, str, str, int, bool]]:
        return [e[1:] for e in self.events if e[0] == message]


@attrs.define
class Report:
    version: ProtocolVersion
    sent: dict[int, int] = attrs.Factory(dict)  # qos -> publish() calls that returned
    received: dict[int, list[int]] = attrs.Factory(lambda: {1: [], 2: []})
    cuts: int = 0
    publisher_reconnects: int = 0
    subscriber_reconnects: int = 0
    seconds: float = 0.0
    trace: FlowTrace | None = None
    _milestone: tuple[int, trio.Event] | None = None

    async def wait_received(self, n: int) -> None:
        """Wait until the subscriber has received ``n`` messages in all."""
        event = trio.Event()
        self._milestone = (n, event)
        await event.wait()

    def _got(self, qos: int, n: int) -> None:
        self.received[qos].append(n)
        milestone = self._milestone
        if milestone and len(self.received[1]) + len(self.received[2]) >= milestone[0]:
            milestone[1].set()

    def duplicates(self, qos: int) -> int:
        return len(self.received[qos]) - len(set(self.received[qos]))

    def first_arrivals(self, qos: int) -> list[int]:
        return list(dict.fromkeys(self.received[qos]))

    def line(self) -> str:
        return (
            f"MQTT {'5' if self.version is ProtocolVersion.V5 else '3.1.1'}: "
            f"sent QoS1 {self.sent.get(1, 0)} QoS2 {self.sent.get(2, 0)}; "
            f"received QoS1 {len(self.received[1])} ({self.duplicates(1)} duplicates) "
            f"QoS2 {len(self.received[2])} ({self.duplicates(2)} duplicates); "
            f"connections cut {self.cuts}; reconnects publisher {self.publisher_reconnects} "
            f"subscriber {self.subscriber_reconnects}; {self.seconds:.1f} s"
        )


def persistent(version: ProtocolVersion) -> dict[str, object]:
    if version is ProtocolVersion.V5:
        return {"clean_start": False, "session_expiry": 600}
    return {"clean_start": False}


async def run_chaos(
    port: int,
    version: ProtocolVersion,
    *,
    count: int = 5000,
    trouble: Callable[[Proxy, Proxy, Report], Awaitable[None]],
) -> Report:
    """Publish ``count`` QoS 1 and ``count`` QoS 2 messages while ``trouble(pub_proxy, sub_proxy,
    report)`` runs; return when the subscriber has seen both end markers."""
    report = Report(version)
    base = f"chaos/{uuid.uuid4().hex[:8]}"
    topics = {1: f"{base}/1", 2: f"{base}/2"}
    options = {"protocol": version, "reconnect": POLICY, **persistent(version)}
    start = time.perf_counter()
    async with (
        open_proxy(port) as pub_proxy,
        open_proxy(port) as sub_proxy,
        trio_mqtt.open_client(
            sub_proxy.url, client_id=f"{base}-sub".replace("/", "-"), **options  # type: ignore[arg-type]
        ) as subscriber,
        subscriber.subscribe(f"{base}/+", qos=2) as messages,
        trio_mqtt.open_client(
            pub_proxy.url, client_id=f"{base}-pub".replace("/", "-"), **options  # type: ignore[arg-type]
        ) as publisher,
        trio.open_nursery() as nursery,
    ):  # fmt: skip
        report.trace = sub_proxy.tap = FlowTrace(version, topics[2])
        nursery.start_soon(trouble, pub_proxy, sub_proxy, report)

        async def publish_all(qos: int) -> None:
            window = trio.Semaphore(WINDOW)

            async def one(n: int, *, task_status: trio.TaskStatus[None]) -> None:
                async with window:
                    # started() before publish(): the PUBLISH is queued before this task's
                    # first checkpoint, so the parent starts the next one in call order
                    task_status.started()
                    await publisher.publish(topics[qos], b"%d" % n, qos=qos)
                    report.sent[qos] = report.sent.get(qos, 0) + 1

            async with trio.open_nursery() as publishes:
                for n in range(count):
                    await window.acquire()
                    window.release()
                    await publishes.start(one, n)
            await publisher.publish(topics[qos], END, qos=qos)

        nursery.start_soon(publish_all, 1)
        nursery.start_soon(publish_all, 2)
        ended: set[int] = set()
        qos_of = {topic: qos for qos, topic in topics.items()}
        async for message in messages:
            qos = qos_of[message.topic]
            if message.payload == END:
                ended.add(qos)
                if len(ended) == 2:
                    break
            else:
                report._got(qos, int(message.payload))
        report.seconds = time.perf_counter() - start
        report.cuts = pub_proxy.cuts + sub_proxy.cuts
        report.publisher_reconnects = publisher.reconnects
        report.subscriber_reconnects = subscriber.reconnects
        nursery.cancel_scope.cancel()
    return report


def random_cuts(
    seed: int, low: float = 0.1, high: float = 0.4
) -> Callable[..., Awaitable[None]]:
    """Trouble: each proxy cuts its connections at seeded random intervals in [low, high) s."""

    async def trouble(pub_proxy: Proxy, sub_proxy: Proxy, report: Report) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pub_proxy.chaos, random.Random(seed), low, high)
            nursery.start_soon(sub_proxy.chaos, random.Random(seed + 1), low, high)

    return trouble


def explain(report: Report) -> str:
    """The wire history of every QoS 2 message received more than once."""
    seen: set[int] = set()
    lines = []
    for n in report.received[2]:
        if n in seen and report.trace is not None:
            lines.append(f"message {n}: {report.trace.history(n)}")
        seen.add(n)
    return "\n".join(lines)


def check(report: Report, count: int) -> None:
    """The guarantees of issue #4, as assertions."""
    assert report.sent == {1: count, 2: count}, report.line()
    assert report.first_arrivals(1) == list(range(count)), (
        report.line()
    )  # complete, in order
    assert report.received[2] == list(range(count)), (
        report.line() + "\n" + explain(report)
    )  # exactly once, in order


def main() -> None:
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    low, high = (float(x) for x in sys.argv[3:5]) if len(sys.argv) > 4 else (0.1, 0.4)
    with running_mosquitto() as broker:
        for version in (ProtocolVersion.V5, ProtocolVersion.V311):
            report = trio.run(
                functools.partial(
                    run_chaos, broker.port, version, count=count,
                    trouble=random_cuts(seed, low, high),
                )
            )  # fmt: skip
            check(report, count)
            print(report.line())


if __name__ == "__main__":
    main()
