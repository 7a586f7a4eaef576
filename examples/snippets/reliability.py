"""The code of docs/reliability.md, run against a broker by the suite (``# [name]`` fragments
are shown on the page by ``literalinclude``)."""

from __future__ import annotations

import logging
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio
import trio.testing

import trio_mqtt

log = logging.getLogger("myapp")


async def reconnect_policy(url: str) -> None:
    # [policy]
    policy = trio_mqtt.ReconnectPolicy(
        initial_delay=0.1,        # upper bound of the first delay (seconds)
        max_delay=30.0,           # the bound stops growing here
        multiplier=2.0,           # growth per attempt
        max_attempts=None,        # give up after this many failed attempts in a row
        give_up_after=None,       # ... or after being down this many seconds
        retry_first_connect=False,  # True: wait for a broker that is not up yet
        stable_after=5.0,         # a connection lost sooner than this counts as a failed attempt
        poison_after=30.0,        # a request the broker keeps closing on fails after this long
    )
    async with trio_mqtt.open_client(url, reconnect=policy) as client: ...
    # [/policy]
    assert client.reconnects == 0


async def watch(client: trio_mqtt.MQTTClient, seen: list[str]) -> None:
    # [watch]
    with client.watch_state() as changes:
        async for change in changes:       # Connected / Disconnected / Reconnecting, in order
            match change:
                case trio_mqtt.Disconnected(cause=cause):
                    log.warning("lost the broker: %s", cause)
                case trio_mqtt.Reconnecting(attempt=n, delay=d, endpoint=e):
                    log.info("attempt %d to %s:%d in %.1fs", n, e.host, e.port, d)
                case trio_mqtt.Connected(session_present=present):
                    log.info("back (session present: %s)", present)
    # [/watch]
                    seen.append(type(change).__name__)  # (for the check below)


async def persistent(
    url: str, handle: Callable[[trio_mqtt.Message], Awaitable[None]]
) -> None:
    # [persistent]
    async with (
        trio_mqtt.open_client(url, client_id="meter-17", clean_start=False, session_expiry=3600) as client,
        client.subscribe("meters/17/commands", qos=1) as commands,
    ):
        async for command in commands:   # Ctrl-C here: the subscription stays with the session;
            await handle(command)        # what is published meanwhile arrives at the next start
    # [/persistent]


async def durable(url: str, path: str) -> None:
    # [durable]
    store = trio_mqtt.SQLiteSessionStore(path)   # e.g. "/var/lib/myapp/mqtt-session.db"
    async with trio_mqtt.open_client(url, client_id="meter-17", clean_start=False,
                                     session_expiry=3600, session_store=store) as client:
        ...
    # [/durable]
        assert client.server.session_present in (True, False)


class Stopped(Exception):
    """Stands in for Ctrl-C: the meter is stopped while it waits for commands."""


async def main(url: str) -> None:
    await reconnect_policy(url)

    # The persistent session: what is published while the meter is stopped arrives when it
    # starts again.
    received: list[bytes] = []

    async def handle(command: trio_mqtt.Message) -> None:
        if command.payload:  # (not the message that cleared the retained one)
            received.append(command.payload)
            raise Stopped

    async with trio_mqtt.open_client(url) as operator:
        # retained, so that the meter's subscription is served it as soon as it is live
        await operator.publish("meters/17/commands", b"first", qos=1, retain=True)
        with trio.fail_after(10):
            try:
                await persistent(url, handle)
            except Stopped:
                pass
        await operator.publish("meters/17/commands", b"", qos=1, retain=True)
        await operator.publish("meters/17/commands", b"while away", qos=1)
    with trio.fail_after(10):
        try:
            await persistent(url, handle)
        except Stopped:
            pass
    assert received == [b"first", b"while away"], received
    async with trio_mqtt.open_client(url, client_id="meter-17", session_expiry=0):
        pass  # end the session

    # watch_state(): the first change is where the client is now
    seen: list[str] = []
    async with trio.open_nursery() as nursery:
        async with trio_mqtt.open_client(url) as client:
            nursery.start_soon(watch, client, seen)
            await trio.testing.wait_all_tasks_blocked()
        # the client is closed: the iteration ends
    assert seen == ["Connected"]

    with tempfile.TemporaryDirectory() as directory:
        await durable(url, str(Path(directory) / "mqtt-session.db"))
    print("done")


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "mqtt://localhost:1883")
