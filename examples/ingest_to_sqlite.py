"""An IoT backend: decode JSON sensor readings and store them in SQLite, in batched
transactions, acknowledging each message only after the transaction that stored it has
committed: a crash loses nothing (the broker redelivers what was not acknowledged).

Several copies can share the load: each subscribes to ``$share/ingest/sensors/+/+``, and the
broker hands each reading to one of them (a shared subscription: Mosquitto supports it on both
protocol versions). Each copy keeps a persistent session, so readings published while it is
away wait for it.

    python -m tests.mosquitto -- .venv/bin/python examples/ingest_to_sqlite.py
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile

import trio

import trio_mqtt

BATCH = 50  # readings per transaction
FILTER = "$share/ingest/sensors/+/+"


async def ingest(
    url: str,
    db_path: str,
    worker: str,
    committed: trio.MemorySendChannel[int],
    *,
    task_status: trio.TaskStatus[None],
) -> None:
    """One ingest worker: store readings in batches, acknowledge after each commit, and
    report each batch's size on ``committed``."""
    db = sqlite3.connect(db_path)
    db.execute(
        "CREATE TABLE IF NOT EXISTS readings (sensor TEXT, kind TEXT, value REAL, worker TEXT)"
    )
    async with (
        trio_mqtt.open_client(
            url, client_id=f"ingest-{worker}", clean_start=False, session_expiry=3600
        ) as client,
        client.subscribe(FILTER, qos=1, manual_ack=True, buffer_size=BATCH) as readings,
    ):
        task_status.started()
        pending: list[trio_mqtt.Message] = []
        while True:
            # a batch: whatever has arrived, up to BATCH, after waiting for the first
            pending.append(await readings.receive())
            while len(pending) < BATCH:
                try:
                    pending.append(readings.receive_nowait())
                except trio.WouldBlock:
                    break
            rows = []
            for message in pending:
                _, sensor, kind = message.topic.split("/")
                rows.append(
                    (sensor, kind, json.loads(message.payload)["value"], worker)
                )
            with db:  # one transaction per batch
                db.executemany("INSERT INTO readings VALUES (?, ?, ?, ?)", rows)
            for message in pending:
                message.ack()  # only now may the broker forget it
            await committed.send(len(pending))
            pending.clear()


async def main(url: str) -> None:
    db_path = os.path.join(tempfile.mkdtemp(), "readings.db")
    committed, batches = trio.open_memory_channel[int](100)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for worker in ("a", "b"):
                await nursery.start(ingest, url, db_path, worker, committed)
            async with (
                trio_mqtt.open_client(url) as devices,
                devices.pipeline() as pipe,
            ):
                for n in range(200):
                    reading = {"value": 20 + n % 10}
                    await pipe.publish(
                        f"sensors/s{n % 7}/temperature", json.dumps(reading)
                    )
            stored = 0
            async for batch in batches:
                stored += batch
                if stored == 200:
                    break
            nursery.cancel_scope.cancel()
    db = sqlite3.connect(db_path)
    per_worker = dict(
        db.execute("SELECT worker, COUNT(*) FROM readings GROUP BY worker").fetchall()
    )
    print("stored 200 readings; per worker:", per_worker)
    print("done")


if __name__ == "__main__":
    trio.run(main, os.environ.get("MQTT_URL", "mqtt://127.0.0.1:1883"))
