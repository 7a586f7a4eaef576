"""A job worker that loses nothing: a persistent session, a file-backed session store and manual
acknowledgement. A job is acknowledged only after it is done, so if the worker dies midway the
broker hands the job to it again when it comes back; meanwhile it logs every connection change.

Run it against any broker: ``python examples/durable_worker.py mqtt://localhost:1883``
(or set ``MQTT_URL``); it queues three jobs, works through them and stops.
"""

from __future__ import annotations

import os
import sys
import tempfile

import trio

import trio_mqtt


async def log_changes(client: trio_mqtt.MQTTClient) -> None:
    with client.watch_state() as changes:
        async for change in changes:  # Connected / Disconnected / Reconnecting
            print("worker:", change)


async def main(url: str) -> None:
    store = trio_mqtt.SQLiteSessionStore(os.path.join(tempfile.mkdtemp(), "worker.db"))
    with trio.fail_after(30):
        async with (
            trio_mqtt.open_client(
                url, client_id="durable-worker", clean_start=False, session_expiry=3600,
                session_store=store,  # unacknowledged work survives a restart of this process
            ) as worker,
            trio_mqtt.open_client(url) as producer,
            worker.subscribe("jobs/#", qos=1, manual_ack=True) as jobs,
            trio.open_nursery() as nursery,
        ):  # fmt: skip
            nursery.start_soon(log_changes, worker)
            for n in range(3):
                await producer.publish(f"jobs/{n}", b"resize image %d" % n, qos=1)
            async for job in jobs:
                print(f"working on {job.topic}: {job.payload.decode()}")
                await trio.sleep(0.01)  # the real work goes here
                job.ack()  # done: only now may the broker forget it
                if job.topic == "jobs/2":
                    break
            nursery.cancel_scope.cancel()
    print("done")


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else os.environ["MQTT_URL"])
