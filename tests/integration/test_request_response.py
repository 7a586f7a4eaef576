"""MQTT 5 request/response (section 4.10) against real brokers: client.request() and
client.serve(), concurrent requests, timeouts and late responses, a request with nowhere to
reply, and a response that crosses a reconnect."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

import trio_mqtt
from tests.chaos import persistent
from tests.ejabberd import PASSWORD, USERNAME, Ejabberd
from tests.integration.test_client import unique
from tests.mosquitto import Mosquitto
from tests.proxy import open_proxy
from trio_mqtt import LocalProtocolError, ProtocolVersion, ReconnectPolicy


@asynccontextmanager
async def adder(url: str, service: str, **login: object) -> AsyncIterator[None]:
    """A responder adding the two numbers of each request, for the block's duration."""
    async with (
        trio_mqtt.open_client(url, **login) as client,  # type: ignore[arg-type]
        client.serve(service) as requests,
        trio.open_nursery() as nursery,
    ):

        async def serve() -> None:
            async for request in requests:
                a, b = request.payload.split(b"+")
                await request.reply(
                    b"%d" % (int(a) + int(b)), content_type="text/plain"
                )

        nursery.start_soon(serve)
        yield
        nursery.cancel_scope.cancel()


@pytest.fixture(params=["mosquitto", "ejabberd"])
def broker(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """A broker URL and its login, for tests both brokers run."""
    if request.param == "mosquitto":
        mosquitto: Mosquitto = request.getfixturevalue("mosquitto")
        return mosquitto.url, {}
    ejabberd: Ejabberd = request.getfixturevalue("ejabberd")
    return ejabberd.mqtt_url, {"username": USERNAME, "password": PASSWORD}


async def test_concurrent_requests_each_get_their_own_response(
    broker: tuple[str, dict[str, object]],
) -> None:
    url, login = broker
    service = unique("svc/add")
    answers: dict[int, bytes] = {}
    with trio.fail_after(15):
        async with (
            adder(url, service, **login),
            trio_mqtt.open_client(url, **login) as client,  # type: ignore[arg-type]
            trio.open_nursery() as nursery,
        ):

            async def ask(n: int) -> None:
                response = await client.request(service, b"%d+%d" % (n, 1000))
                assert response.properties.content_type == "text/plain"
                answers[n] = response.payload

            for n in range(20):
                nursery.start_soon(ask, n)
    assert answers == {n: b"%d" % (n + 1000) for n in range(20)}


async def test_a_timed_out_request_is_forgotten_and_its_late_response_dropped(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_mqtt")
    service = unique("svc/slow")
    timed_out = trio.Event()
    with trio.fail_after(15):
        async with (
            trio_mqtt.open_client(mosquitto.url) as responder,
            responder.serve(service) as requests,
            trio_mqtt.open_client(mosquitto.url) as client,
            trio.open_nursery() as nursery,
        ):

            async def answer_late() -> None:
                request = await requests.receive()
                await timed_out.wait()
                await request.reply(b"too late")
                request = await requests.receive()
                await request.reply(b"in time")

            nursery.start_soon(answer_late)
            with pytest.raises(trio.TooSlowError), trio.fail_after(0.5):
                await client.request(service, b"first")
            timed_out.set()
            assert (await client.request(service, b"second")).payload == b"in time"
    dropped = [
        r for r in caplog.records if "dropped: no request waits" in r.getMessage()
    ]
    assert len(dropped) == 1


async def test_a_request_without_response_topic_is_the_responders_error(
    mosquitto: Mosquitto,
) -> None:
    """A plain publish to a service: the responder sees it, reply() raises
    LocalProtocolError (nowhere to reply), and it goes on serving."""
    service = unique("svc/plain")
    with trio.fail_after(10):
        async with (
            trio_mqtt.open_client(mosquitto.url) as responder,
            responder.serve(service) as requests,
            trio_mqtt.open_client(mosquitto.url) as client,
        ):
            await client.publish(service, b"no reply wanted", qos=1)
            request = await requests.receive()
            assert request.response_topic is None
            with pytest.raises(LocalProtocolError, match="no Response Topic"):
                await request.reply(b"?")
            async with trio.open_nursery() as nursery:

                async def answer() -> None:
                    await (await requests.receive()).reply(b"yes")

                nursery.start_soon(answer)
                assert (await client.request(service, b"?")).payload == b"yes"


async def test_a_response_crosses_a_reconnect(mosquitto: Mosquitto) -> None:
    """The requester's connection is cut while the responder works: with a persistent
    session the broker queues the response, the client renews nothing (session present)
    and the waiting request gets it."""
    service = unique("svc/cut")
    version = ProtocolVersion.V5
    received, go_on, replied = trio.Event(), trio.Event(), trio.Event()
    with trio.fail_after(15):
        async with (
            trio_mqtt.open_client(mosquitto.url) as responder,
            responder.serve(service) as requests,
            open_proxy(mosquitto.port) as proxy,
            trio_mqtt.open_client(
                proxy.url, client_id=unique("requester"), protocol=version,
                reconnect=ReconnectPolicy(initial_delay=0.05, max_delay=0.2),
                **persistent(version),  # type: ignore[arg-type]
            ) as client,
            trio.open_nursery() as nursery,
        ):  # fmt: skip

            async def answer() -> None:
                request = await requests.receive()
                received.set()
                await go_on.wait()
                await request.reply(b"after the cut")  # PUBACK: the broker has it
                replied.set()

            async def cut() -> None:
                await received.wait()
                proxy.refuse(True)
                assert proxy.cut() == 1
                go_on.set()  # the response is published while the requester is away
                await replied.wait()
                proxy.refuse(False)

            nursery.start_soon(answer)
            nursery.start_soon(cut)
            response = await client.request(service, b"?")
            assert response.payload == b"after the cut"
            assert client.reconnects == 1


async def test_request_needs_mqtt5(mosquitto: Mosquitto) -> None:
    async with trio_mqtt.open_client(
        mosquitto.url, protocol=ProtocolVersion.V311
    ) as client:
        with pytest.raises(LocalProtocolError, match="MQTT 5"):
            await client.request("svc", b"")
