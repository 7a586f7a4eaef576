"""Request/response (MQTT 5), both sides: a calculator service and a client that asks it.

python -m tests.mosquitto -- .venv/bin/python examples/rpc.py
"""

from __future__ import annotations

import json
import os

import trio

import trio_mqtt


async def calculator(url: str, *, task_status: trio.TaskStatus[None]) -> None:
    """The service: answers {"op": "add"|"mul", "args": [...]} on rpc/calc."""
    async with (
        trio_mqtt.open_client(url, client_id="calculator") as client,
        client.serve("rpc/calc", qos=1) as requests,
    ):
        task_status.started()
        async for request in requests:
            call = json.loads(request.payload)
            if call["op"] == "add":
                result = {"result": sum(call["args"])}
            elif call["op"] == "mul":
                product = 1
                for arg in call["args"]:
                    product *= arg
                result = {"result": product}
            else:
                result = {"error": f"unknown op {call['op']!r}"}
            await request.reply(json.dumps(result), content_type="application/json")


async def main(url: str) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(calculator, url)
            async with trio_mqtt.open_client(url) as client:
                for call in (
                    {"op": "add", "args": [2, 40]},
                    {"op": "mul", "args": [6, 7]},
                    {"op": "pow", "args": [2, 8]},
                ):
                    with trio.fail_after(5):
                        response = await client.request("rpc/calc", json.dumps(call))
                    print(call["op"], call["args"], "->", json.loads(response.payload))
            nursery.cancel_scope.cancel()
    print("done")


if __name__ == "__main__":
    trio.run(main, os.environ.get("MQTT_URL", "mqtt://127.0.0.1:1883"))
