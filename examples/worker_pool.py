"""A worker pool across processes: each worker process has its own client and joins the
shared subscription ``$share/workers/jobs/#`` at QoS 1, so the broker hands each job to one
worker. A worker acknowledges a job only after the work is done (``manual_ack=True``) and keeps
a persistent session under a fixed client id: if it dies mid-job, the broker redelivers the
unacknowledged job to that session when the worker comes back.

    python -m tests.mosquitto -- .venv/bin/python examples/worker_pool.py   # 3 workers, 60 jobs
    python examples/worker_pool.py worker URL NAME                         # one worker

A worker prints ``ready`` once subscribed, then ``job N`` when it starts job N and
``done N`` when it has published the result and acknowledged the job. docs/howto-scaling.md
explains the session choices.
"""

from __future__ import annotations

import functools
import hashlib
import os
import signal
import subprocess
import sys

import trio

import trio_mqtt

JOBS = "$share/workers/jobs/#"


def work(payload: bytes) -> bytes:
    """The job: some CPU work, standing in for the real thing. Its payload is its size: the
    length of a SHA-256 hash chain."""
    digest = payload
    for _ in range(int(payload)):
        digest = hashlib.sha256(digest).digest()
    return digest.hex().encode()


async def worker(url: str, name: str, protocol: str = "5") -> None:
    """One worker: take jobs from the shared subscription, work, publish the result, and only
    then acknowledge the job.

    SIGTERM or SIGINT is a scale-down: the job in hand is finished, then the worker leaves
    the group (UNSUBSCRIBE) and disconnects. Otherwise its persistent session would stay a
    member of the group, and the broker would go on queueing a share of the jobs for a worker
    that is not coming back. A crash (SIGKILL) keeps the session: see the module docstring.
    """
    async with (
        trio_mqtt.open_client(
            url, client_id=f"worker-{name}", clean_start=False, session_expiry=3600,
            protocol=trio_mqtt.ProtocolVersion(int(protocol)),
        ) as client,
        client.subscribe(JOBS, qos=1, manual_ack=True) as jobs,
        trio.open_nursery() as nursery,
    ):  # fmt: skip
        stop = trio.CancelScope()

        async def on_signal() -> None:
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                print("ready", flush=True)
                async for _ in signals:
                    stop.cancel()
                    return

        nursery.start_soon(on_signal)
        with stop:
            async for job in jobs:
                number = job.topic.rsplit("/", 1)[1]
                print(f"job {number}", flush=True)
                with trio.CancelScope(shield=True):  # a job in hand is finished first
                    result = work(job.payload)
                    await client.publish(f"results/{number}", result, qos=1)
                    job.ack()  # after the work and its result: a crash before loses nothing
                print(f"done {number}", flush=True)
        # leaving the subscription block normally: UNSUBSCRIBE, the group loses a member


class WorkerProcess:
    """A worker running in a process of its own, and the lines it has printed."""

    def __init__(self, name: str, protocol: int = 5) -> None:
        self.name = name
        self.protocol = protocol
        self.process: trio.Process | None = None
        self.lines: list[str] = []
        self._printed = trio.Event()

    async def wait_for_line(self, line: str) -> None:
        """Wait until the worker has printed ``line``."""
        while line not in self.lines:
            await self._printed.wait()

    async def run(
        self, url: str, *, task_status: trio.TaskStatus[WorkerProcess]
    ) -> None:
        """Start it; started once it has subscribed; then read what it prints until it ends
        (a pipe nobody reads would stop the worker once full)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        argv = [sys.executable, __file__, "worker", url, self.name, str(self.protocol)]
        async with trio.open_nursery() as nursery:
            process = self.process = await nursery.start(
                functools.partial(
                    trio.run_process, argv, stdout=subprocess.PIPE, env=env, check=False
                )
            )
            assert process.stdout is not None
            started, pending = False, b""
            while chunk := await process.stdout.receive_some():
                *complete, pending = (pending + chunk).split(b"\n")
                self.lines += [line.decode() for line in complete]
                self._printed.set()
                self._printed = trio.Event()
                if not started and "ready" in self.lines:
                    started = True
                    task_status.started(self)
            if not started:
                raise RuntimeError(f"worker {self.name} ended before subscribing")


async def main(url: str, workers: int = 3, jobs: int = 60) -> None:
    """Start ``workers`` worker processes, hand them ``jobs`` jobs, wait for every result, then
    stop the workers with SIGTERM (each leaves the group and disconnects)."""
    async with trio_mqtt.open_client(url) as client, trio.open_nursery() as nursery:
        pool = [
            await nursery.start(WorkerProcess(str(n)).run, url) for n in range(workers)
        ]
        async with client.subscribe("results/+", qos=1) as results:
            for n in range(jobs):
                await client.publish(f"jobs/{n}", b"2000", qos=1)  # ~2 ms each
            done: set[str] = set()
            async for result in results:
                done.add(result.topic.rsplit("/", 1)[1])
                if len(done) == jobs:
                    break
        for member in pool:
            assert member.process is not None
            member.process.send_signal(signal.SIGTERM)  # scale down: finish, leave
    print(f"{jobs} jobs done by {workers} workers")
    print("done")


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        trio.run(worker, *sys.argv[2:])
    else:
        trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "mqtt://localhost:1883")
