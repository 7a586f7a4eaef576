"""Worker pools across processes (examples/worker_pool.py): each worker process has its own
client on the shared subscription ``$share/workers/jobs/#`` at QoS 1, acknowledging a job only
after the work (``manual_ack=True``). Real Mosquitto, real processes, both protocol versions
(Mosquitto has shared subscriptions on both). Each test has a broker of its own: a worker that
leaves by a crash stays a member of the group through its persistent session."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest
import trio

import trio_mqtt
from tests.integration.test_client import VERSIONS
from tests.mosquitto import running_mosquitto
from trio_mqtt import ProtocolVersion

EXAMPLE: dict[str, Any] = runpy.run_path(
    str(Path(__file__).parents[2] / "examples" / "worker_pool.py")
)
WorkerProcess = EXAMPLE["WorkerProcess"]


async def collect(results: trio_mqtt.Subscription, count: int) -> set[int]:
    done: set[int] = set()
    async for result in results:
        done.add(int(result.topic.rsplit("/", 1)[1]))
        if len(done) == count:
            break
    return done


@pytest.mark.parametrize("version", VERSIONS)
async def test_jobs_are_shared_among_worker_processes(
    tmp_path: Path, version: ProtocolVersion
) -> None:
    """90 jobs, 3 workers: every job is done, and by one worker each time the broker chose
    (each job is acknowledged after its result is published, so none is done twice here)."""
    jobs = 90
    with running_mosquitto(tmp_path) as mosquitto, trio.fail_after(60):
        async with (
            trio_mqtt.open_client(mosquitto.url, protocol=version) as client,
            client.subscribe("results/+", qos=1) as results,
            trio.open_nursery() as nursery,
        ):
            pool = [
                await nursery.start(WorkerProcess(f"share-{version}-{n}", version).run, mosquitto.url)
                for n in range(3)
            ]  # fmt: skip
            for n in range(jobs):
                await client.publish(f"jobs/{n}", b"2000", qos=1)
            assert await collect(results, jobs) == set(range(jobs))
            for member in pool:
                member.process.terminate()  # SIGTERM: a scale-down, the worker leaves
    started = [
        {line for line in member.lines if line.startswith("job ")} for member in pool
    ]
    assert all(started)  # every worker had a share
    assert sum(len(s) for s in started) == jobs  # and no job went to two of them


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_worker_killed_mid_job_gets_the_job_again_with_its_session(
    tmp_path: Path, version: ProtocolVersion
) -> None:
    """SIGKILL a worker while it works on a job (not acknowledged yet), then start it again
    under the same client id: the broker redelivers the job to its persistent session, and the
    result arrives. Nothing is lost; the job is worked on twice (at least once)."""
    name = f"killed-{version}"
    with running_mosquitto(tmp_path) as mosquitto, trio.fail_after(60):
        async with (
            trio_mqtt.open_client(mosquitto.url, protocol=version) as client,
            client.subscribe("results/+", qos=1) as results,
            trio.open_nursery() as nursery,
        ):
            first = await nursery.start(WorkerProcess(name, version).run, mosquitto.url)
            await client.publish("jobs/7", b"3000000", qos=1)  # a long job: seconds
            await first.wait_for_line("job 7")
            first.process.kill()  # mid-job: the job is not acknowledged
            await first.process.wait()
            assert "done 7" not in first.lines
            again = await nursery.start(WorkerProcess(name, version).run, mosquitto.url)
            assert await collect(results, 1) == {7}
            await again.wait_for_line("done 7")
            again.process.terminate()
    assert "job 7" in again.lines  # redelivered to the session, and done this time
