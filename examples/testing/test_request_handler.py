"""Testing a request/response handler (MQTT 5): the handler answers requests on a topic;
the test asks it, and checks how it treats a request with nowhere to reply."""

from __future__ import annotations

import json

import pytest
import trio

import trio_mqtt
from trio_mqtt.testing import MQTTBroker
from trio_mqtt.testing.pytest_plugin import ConnectFactory


async def price_service(
    client: trio_mqtt.MQTTClient, *, task_status: trio.TaskStatus[None]
) -> None:
    """The handler under test: the price of an order, or an error for an unknown item."""
    prices = {"apple": 30, "pear": 45}
    async with client.serve("shop/price") as requests:
        task_status.started()
        async for request in requests:
            order = json.loads(request.payload)
            if request.response_topic is None:
                continue  # nowhere to answer: ignore it
            if order["item"] not in prices:
                await request.reply(json.dumps({"error": "unknown item"}))
            else:
                await request.reply(
                    json.dumps({"cents": prices[order["item"]] * order["n"]})
                )


async def test_the_price_service(
    mqtt_broker: MQTTBroker, mqtt_connect: ConnectFactory
) -> None:
    async with (
        mqtt_connect() as shop,
        mqtt_connect() as customer,
        trio.open_nursery() as nursery,
    ):
        await nursery.start(price_service, shop)
        with trio.fail_after(5):
            answer = await customer.request(
                "shop/price", json.dumps({"item": "pear", "n": 3})
            )
            unknown = await customer.request(
                "shop/price", json.dumps({"item": "kiwi", "n": 1})
            )
            # a plain publish has no Response Topic: the service must survive it
            await customer.publish(
                "shop/price", json.dumps({"item": "apple", "n": 1}), qos=1
            )
            again = await customer.request(
                "shop/price", json.dumps({"item": "apple", "n": 2})
            )
        nursery.cancel_scope.cancel()
    assert json.loads(answer.payload) == {"cents": 135}
    assert json.loads(unknown.payload) == {"error": "unknown item"}
    assert json.loads(again.payload) == {"cents": 60}
    # what the broker saw: three responses, each to its request's own Correlation Data
    replies = [
        p
        for p in mqtt_broker.packets(direction="in")
        if getattr(p, "topic", "").startswith("trio-mqtt/responses/")
    ]
    assert len(replies) == 3


pytestmark = pytest.mark.filterwarnings("error")
