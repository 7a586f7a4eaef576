"""The client as a long-lived service task of a Trio application.

``mqtt_service`` is started with ``nursery.start``: it connects, hands the client to the
application once connected, and keeps it until the application stops it by cancelling the
nursery; leaving its block sends DISCONNECT. Several tasks share the one client: each
subscription and publish is independent, and they run concurrently.

    python -m tests.mosquitto -- .venv/bin/python examples/trio_service.py
"""

from __future__ import annotations

import os

import trio

import trio_mqtt


async def mqtt_service(
    url: str, *, task_status: trio.TaskStatus[trio_mqtt.MQTTClient]
) -> None:
    """Run a client for as long as the application does; hand it over once connected."""
    async with trio_mqtt.open_client(url, client_id="app-service") as client:
        task_status.started(client)
        await trio.sleep_forever()  # until the application cancels us


async def thermostat(
    client: trio_mqtt.MQTTClient,
    done: trio.Event,
    *,
    task_status: trio.TaskStatus[None],
) -> None:
    """One task of the application: reacts to readings."""
    async with client.subscribe("home/+/temperature", qos=1) as readings:
        task_status.started()
        async for reading in readings:
            if float(reading.payload) > 25:
                await client.publish("home/ac/command", b"on", qos=1)
                done.set()
                return


async def sensor(client: trio_mqtt.MQTTClient) -> None:
    """Another task: publishes readings."""
    for value in (21.0, 23.5, 26.0):
        await client.publish("home/kitchen/temperature", str(value), qos=1)


async def main(url: str) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as app:
            client = await app.start(mqtt_service, url)
            async with client.subscribe("home/ac/command", qos=1) as commands:
                done = trio.Event()
                await app.start(thermostat, client, done)
                app.start_soon(sensor, client)
                command = await commands.receive()
                print("air conditioning:", command.payload.decode())
                await done.wait()
            app.cancel_scope.cancel()  # stop the service: the client disconnects cleanly
    print("done")


if __name__ == "__main__":
    trio.run(main, os.environ.get("MQTT_URL", "mqtt://127.0.0.1:1883"))
