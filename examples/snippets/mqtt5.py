"""The code of docs/mqtt5.md, run against a broker by the suite: each fragment between
``# [name]`` and ``# [/name]`` is shown on the page by ``literalinclude``."""


from __future__ import annotations

import json
import sys

import trio

import trio_mqtt


async def server_info(client: trio_mqtt.MQTTClient) -> trio_mqtt.ServerInfo:
    # [server]
    server = client.server          # a ServerInfo, renewed at every reconnect
    server.receive_maximum          # QoS 1/2 messages it takes unacknowledged from us
    server.maximum_qos, server.retain_available, server.maximum_packet_size
    server.topic_alias_maximum      # aliases it accepts from us
    server.shared_subscription_available, server.wildcard_subscription_available,
    server.subscription_identifier_available
    server.assigned_client_identifier, server.server_keep_alive, server.response_information
    server.reason_string, server.user_properties, server.properties   # everything, as received
    # [/server]
    return server


async def connect(url: str) -> None:
    # [connect]
    async with trio_mqtt.open_client(
        url,
        session_expiry=3600,                   # Session Expiry Interval
        receive_maximum=100,                   # Receive Maximum
        max_packet_size=1024 * 1024,           # Maximum Packet Size
        topic_alias_maximum=16,                # aliases the broker may set for us (the default)
        user_properties=[("site", "plant-7")],
        request_response_information=True,     # ask for Response Information
        request_problem_information=False,     # no Reason Strings except where required
        will=trio_mqtt.Will("devices/d1/status", "offline", qos=1,
                            properties=trio_mqtt.Properties(will_delay_interval=30,
                                                            message_expiry_interval=600,
                                                            content_type="text/plain")),
    ) as client:
        ...
    # [/connect]
        assert client.server.receive_maximum >= 1


async def publish(client: trio_mqtt.MQTTClient) -> None:
    # [publish]
    await client.publish(
        "sensors/t1", b"21.5", qos=1,
        content_type="text/plain", payload_format_indicator=1,
        message_expiry_interval=60,            # what is left of it goes with a resend
        response_topic="replies/t1", correlation_data=b"\x01",
        user_properties=[("unit", "C"), ("unit", "F")],   # order and repeats kept
    )
    # [/publish]


async def subscribe(client: trio_mqtt.MQTTClient) -> None:
    # [subscribe]
    async with client.subscribe(
        "chat/room", qos=1,
        no_local=True,                          # not our own messages [MQTT-3.8.3-3]
        retain_as_published=True,               # keep the RETAIN flag as published
        retain_handling=trio_mqtt.RetainHandling.SEND_IF_NEW_SUBSCRIPTION,
    ) as messages:
        messages.granted_qos                    # what SUBACK granted, per filter
    # [/subscribe]
        assert list(messages.granted_qos) == [trio_mqtt.QoS.AT_LEAST_ONCE]


async def responder(client: trio_mqtt.MQTTClient) -> None:
    # [responder]
    async with client.serve("svc/add") as requests:
        async for request in requests:
            a, b = json.loads(request.payload)
            await request.reply(json.dumps(a + b))
    # [/responder]


async def requester(client: trio_mqtt.MQTTClient) -> trio_mqtt.Message:
    # [requester]
    with trio.fail_after(5):
        response = await client.request("svc/add", json.dumps([2, 40]))
    # [/requester]
    return response


async def leave(url: str) -> None:
    async with trio_mqtt.open_client(url) as client:
        # [disconnect-with-will]
        await client.disconnect(trio_mqtt.ReasonCode.DISCONNECT_WITH_WILL_MESSAGE)  # publish the will
        # [/disconnect-with-will]
    async with trio_mqtt.open_client(url, session_expiry=60) as client:
        # [disconnect-expiry]
        await client.disconnect(session_expiry=0)       # discard the session now
        # [/disconnect-expiry]
    async with trio_mqtt.open_client(url) as client:
        # [disconnect-reason]
        await client.disconnect(reason_string="maintenance", user_properties=[("by", "ops")])
        # [/disconnect-reason]


async def main(url: str) -> None:
    async with trio_mqtt.open_client(url) as client:
        server = await server_info(client)
        assert server.maximum_qos is not None
        await publish(client)
        await subscribe(client)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(responder, client)
            response = await requester(client)
            nursery.cancel_scope.cancel()
        assert json.loads(response.payload) == 42
    await connect(url)
    await leave(url)
    print("done")


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "mqtt://localhost:1883")
