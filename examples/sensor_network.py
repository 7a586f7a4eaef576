"""The sensor network from the MQTT introduction, end to end.

A temperature sensor publishes readings (QoS 1, retained) to ``home/livingroom/temperature``; an
app subscribed to ``home/+/temperature`` receives them; then a dashboard that joins late is
served the last retained reading at once, before anything new. Finally the retained state is
cleared with an empty retained message.

The rest of the MQTT introduction follows, each step narrated:

* a sensor announces itself ``online`` (retained) and leaves a Last Will that says ``offline``:
  when it dies without a word, the broker tells everyone;
* a QoS 2 command channel: a heater receives each command exactly once;
* a consumer with a persistent session is away while readings are published, and gets every
  one when it comes back.

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

        await last_will(url)
        await command_channel(url)
        await persistent_consumer(url)
    print("done")


def say(text: str) -> None:
    print(f"  * {text}")


async def last_will(url: str) -> None:
    """A sensor's status: retained ``online``, and a will saying ``offline``."""
    status = "home/sensors/sensor-2/status"
    will = trio_mqtt.Will(status, b"offline", qos=1, retain=True)
    async with (
        trio_mqtt.open_client(url, client_id="monitor") as monitor,
        monitor.subscribe(status, qos=1) as statuses,
    ):
        async with trio_mqtt.open_client(
            url, client_id="sensor-2", will=will
        ) as sensor:
            await sensor.publish(status, b"online", qos=1, retain=True)
            say(f"monitor sees sensor-2: {(await statuses.receive()).payload.decode()}")
            # A crash or a pulled cable would end the connection without DISCONNECT; here the
            # sensor says "publish my will anyway" (MQTT 5 reason code 0x04), which the broker
            # treats the same way.
            await sensor.disconnect(trio_mqtt.ReasonCode.DISCONNECT_WITH_WILL_MESSAGE)
        message = await statuses.receive()
        say(
            f"sensor-2 is gone; its Last Will tells the monitor: {message.payload.decode()}"
        )
        await monitor.publish(status, b"", qos=1, retain=True)  # tidy up


async def command_channel(url: str) -> None:
    """QoS 2: each command reaches the heater exactly once."""
    async with (
        trio_mqtt.open_client(url, client_id="heater") as heater,
        heater.subscribe("home/heater/set", qos=2) as commands,
        trio_mqtt.open_client(url, client_id="app") as app,
    ):
        for setpoint in (b"20", b"21"):
            await app.publish("home/heater/set", setpoint, qos=2)
            command = await commands.receive()
            say(
                f"heater set to {command.payload.decode()} (QoS {int(command.qos)}: exactly once)"
            )


async def persistent_consumer(url: str) -> None:
    """A consumer with a persistent session misses nothing while it is away."""
    session = {"client_id": "archiver", "clean_start": False, "session_expiry": 600}
    async with trio_mqtt.open_client(url, **session) as archiver:  # type: ignore[arg-type]
        with trio.CancelScope() as leaving:
            async with archiver.subscribe("home/+/energy", qos=1):
                leaving.cancel()  # goes away, keeping its subscription in the session
                await trio.sleep_forever()
    async with trio_mqtt.open_client(url, client_id="meter") as meter:
        for kwh in (b"1.2", b"1.3", b"1.5"):
            await meter.publish("home/kitchen/energy", kwh, qos=1)
    say("the archiver was away while the meter published 3 readings")
    async with (
        trio_mqtt.open_client(url, **session) as archiver,  # type: ignore[arg-type]
        archiver.subscribe("home/+/energy", qos=1) as energy,
    ):
        got = [(await energy.receive()).payload.decode() for _ in range(3)]
        say(
            f"back (session present: {archiver.session_present}), it gets them all: {got}"
        )
    async with trio_mqtt.open_client(url, client_id="archiver"):
        pass  # a clean start ends the demo's session


if __name__ == "__main__":
    trio.run(
        main,
        sys.argv[1]
        if len(sys.argv) > 1
        else os.environ.get("MQTT_URL", "mqtt://localhost:1883"),
    )
