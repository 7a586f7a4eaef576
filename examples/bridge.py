"""A bridge: forward a topic tree from one broker to another, QoS 1, losing nothing across
reconnects of either side.

The bridge subscribes on the source with a persistent session and manual acknowledgement, and
acknowledges each message only once the destination has acknowledged its copy (PUBACK): a
message in flight when either side drops is redelivered by the source and published again
(at least once, never lost).

Here the destination is trio_mqtt.testing's in-process broker, so that the example runs with
one real broker; in production both are URLs.

    python -m tests.mosquitto -- .venv/bin/python examples/bridge.py
"""

from __future__ import annotations

import os

import trio

import trio_mqtt
from trio_mqtt.testing import MQTTBroker, open_broker


async def bridge(
    source_url: str,
    destination: MQTTBroker,
    tree: str,
    *,
    task_status: trio.TaskStatus[None],
) -> None:
    """Forward ``tree/#`` from the source to the destination, QoS 1."""
    async with (
        trio_mqtt.open_client(
            source_url, client_id="bridge", clean_start=False, session_expiry=3600
        ) as source,
        trio_mqtt.open_client(
            transport_factory=destination.connect_stream, client_id="bridge-sink"
        ) as sink,
        source.subscribe(f"{tree}/#", qos=1, manual_ack=True) as messages,
    ):
        task_status.started()
        async for message in messages:
            await sink.publish(
                message.topic, message.payload, qos=1, properties=message.properties
            )
            message.ack()  # the destination has it: the source may forget it


async def main(url: str) -> None:
    with trio.fail_after(30):
        async with open_broker() as far, trio.open_nursery() as nursery:
            await nursery.start(bridge, url, far, "plant")
            async with (
                trio_mqtt.open_client(transport_factory=far.connect_stream) as remote,
                remote.subscribe("plant/#", qos=1) as forwarded,
                trio_mqtt.open_client(url) as local,
            ):
                for n in range(3):
                    await local.publish(f"plant/line-{n}/status", b"running", qos=1)
                far.cut(
                    "bridge-sink"
                )  # the destination drops the bridge: it reconnects
                await local.publish("plant/line-3/status", b"stopped", qos=1)
                for _ in range(4):
                    message = await forwarded.receive()
                    print("forwarded:", message.topic, message.payload.decode())
            nursery.cancel_scope.cancel()
    print("done")


if __name__ == "__main__":
    trio.run(main, os.environ.get("MQTT_URL", "mqtt://127.0.0.1:1883"))
