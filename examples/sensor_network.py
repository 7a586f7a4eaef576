"""The sensor network from the MQTT introduction, end to end.

A temperature sensor publishes readings (QoS 1, retained) to ``home/livingroom/temperature``; an
app subscribed to ``home/+/temperature`` receives them; then a dashboard that joins late is
served the last retained reading at once, before anything new. Finally the retained state is
cleared with an empty retained message.

Run it against any broker: ``python examples/sensor_network.py mqtt://localhost:1883``
(or set ``MQTT_URL``).
"""

from __future__ import annotations

import os
import sys

import trio

import trio_mqtt

TOPIC = "home/livingroom/temperature"


async def main(url: str) -> None:
    with trio.fail_after(30):
        async with (
            trio_mqtt.open_client(url, client_id="app") as app,
            trio_mqtt.open_client(url, client_id="sensor-1") as sensor,
            app.subscribe("home/+/temperature", qos=1) as readings,
        ):
            for value in ("21.5", "21.7", "22.0"):
                result = await sensor.publish(TOPIC, value, qos=1, retain=True)
                message = await readings.receive()
                print(
                    f"app      <- {message.topic} = {message.payload.decode()} (acked: {result.reason_code.name})"
                )

        # A dashboard that connects later gets the last retained reading straight away.
        async with (
            trio_mqtt.open_client(url, client_id="dashboard") as dashboard,
            dashboard.subscribe("home/+/temperature", qos=1) as latest,
        ):
            message = await latest.receive()
            print(
                f"late joiner <- {message.topic} = {message.payload.decode()} (retained={message.retain})"
            )
            await dashboard.publish(
                TOPIC, b"", qos=1, retain=True
            )  # clear the retained state
    print("done")


if __name__ == "__main__":
    trio.run(
        main,
        sys.argv[1]
        if len(sys.argv) > 1
        else os.environ.get("MQTT_URL", "mqtt://localhost:1883"),
    )
