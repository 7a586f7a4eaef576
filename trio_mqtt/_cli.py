"""The ``trio-mqtt`` command (also ``python -m trio_mqtt``): ``pub`` and ``sub``, the everyday
jobs of mosquitto_pub and mosquitto_sub. docs/cli.md describes it, exit codes included."""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import trio

from ._enums import ProtocolVersion, QoS
from ._exceptions import (
    ConnectError,
    ConnectRefusedError,
    MQTTError,
    PublishError,
    SubscribeError,
)
from ._message import Message
from ._open import open_client
from ._pipeline import PipelineError
from ._sansio._packets import Will
from ._tls import TLSConfig

#: Exit codes (docs/cli.md).
OK, FAILED, USAGE, REFUSED, UNREACHABLE, PUBLISH_REFUSED, SUBSCRIBE_REFUSED = (
    0,
    1,
    2,
    3,
    4,
    5,
    6,
)
INTERRUPTED = 130  # 128 + SIGINT, as shells report it
PASSWORD_VARIABLE = "TRIO_MQTT_PASSWORD"


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "url", help="the broker: mqtt://, mqtts://, ws://, wss:// or unix://"
    )
    common.add_argument("-u", "--username")
    common.add_argument(
        "-P", "--password",
        help=f"the password (better: the {PASSWORD_VARIABLE} environment variable)",
    )  # fmt: skip
    common.add_argument("-i", "--client-id")
    common.add_argument(
        "-V", "--protocol", choices=["5", "3.1.1", "auto"], default="5",
        help="the MQTT version (auto: 5, else 3.1.1)",
    )  # fmt: skip
    common.add_argument("-k", "--keepalive", type=float, default=60.0)
    common.add_argument(
        "--cafile", help="CA certificates (PEM) to verify the broker with"
    )
    common.add_argument("--cert", help="a client certificate (PEM), for mutual TLS")
    common.add_argument("--key", help="the client certificate's key (PEM)")
    common.add_argument(
        "--insecure", action="store_true",
        help="do not verify the broker's certificate (a warning says so on every connection)",
    )  # fmt: skip
    common.add_argument(
        "--log-level", default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="DEBUG also traces every packet (never payloads or credentials)",
    )  # fmt: skip

    parser = argparse.ArgumentParser(
        prog="trio-mqtt", description="Publish and subscribe from the command line."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    pub = commands.add_parser("pub", parents=[common], help="publish messages")
    pub.add_argument("topic")
    pub.add_argument(
        "message", nargs="?", help="the payload (else --file or --stdin-*)"
    )
    source = pub.add_mutually_exclusive_group()
    source.add_argument("-f", "--file", help="the payload: a file's bytes")
    source.add_argument(
        "-l", "--stdin-lines", action="store_true", help="one message per line of stdin"
    )
    source.add_argument(
        "-s", "--stdin", action="store_true", help="the payload: all of stdin"
    )
    pub.add_argument("-q", "--qos", type=int, choices=[0, 1, 2], default=0)
    pub.add_argument("-r", "--retain", action="store_true")
    pub.add_argument("--repeat", type=int, default=1, help="publish it this many times")
    pub.add_argument(
        "--interval", type=float, default=0.0, help="seconds between repeats"
    )
    pub.add_argument("--content-type")
    pub.add_argument("--response-topic")
    pub.add_argument("--message-expiry", type=int, help="Message Expiry Interval (s)")
    pub.add_argument(
        "-D", "--user-property", action="append", default=[], metavar="KEY=VALUE"
    )
    pub.add_argument("--will-topic")
    pub.add_argument("--will-payload", default="")
    pub.add_argument("--will-qos", type=int, choices=[0, 1, 2], default=0)
    pub.add_argument("--will-retain", action="store_true")

    sub = commands.add_parser(
        "sub", parents=[common], help="print messages as they come"
    )
    sub.add_argument("filters", nargs="+", metavar="filter")
    sub.add_argument("-q", "--qos", type=int, choices=[0, 1, 2], default=0)
    output = sub.add_mutually_exclusive_group()
    output.add_argument(
        "-v", "--verbose", action="store_true", help="print the topic too"
    )
    output.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per message (see docs/cli.md)",
    )
    sub.add_argument("-C", "--count", type=int, help="stop after this many messages")
    sub.add_argument(
        "--no-clean-start", action="store_true", help="resume the session (needs -i)"
    )
    sub.add_argument("-x", "--session-expiry", type=float, default=0.0)
    return parser


def _connect_options(args: argparse.Namespace) -> dict[str, Any]:
    password = (
        args.password
        if args.password is not None
        else os.environ.get(PASSWORD_VARIABLE)
    )
    tls = None
    if args.cafile or args.cert or args.insecure:
        tls = TLSConfig(
            ca_file=args.cafile, client_cert=args.cert, client_key=args.key,
            insecure_skip_verify=args.insecure,
        )  # fmt: skip
    versions: dict[str, ProtocolVersion | str] = {
        "5": ProtocolVersion.V5, "3.1.1": ProtocolVersion.V311, "auto": "auto",
    }  # fmt: skip
    protocol = versions[args.protocol]
    return {
        "client_id": args.client_id,
        "username": args.username,
        "password": password,
        "protocol": protocol,
        "keepalive": args.keepalive,
        "tls": tls,
    }


def _user_properties(pairs: Sequence[str]) -> list[tuple[str, str]]:
    result = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"a user property is KEY=VALUE, not {pair!r}")
        result.append((key, value))
    return result


async def _pub(args: argparse.Namespace) -> None:
    options = _connect_options(args)
    if args.will_topic:
        options["will"] = Will(
            args.will_topic,
            args.will_payload,
            qos=args.will_qos,
            retain=args.will_retain,
        )
    props = {
        "content_type": args.content_type,
        "response_topic": args.response_topic,
        "message_expiry_interval": args.message_expiry,
        "user_properties": _user_properties(args.user_property),
    }
    if args.stdin_lines:
        payloads: list[bytes] | None = None
    elif args.file:
        with open(args.file, "rb") as file:  # noqa: ASYNC230 - read once, before connecting
            payloads = [file.read()]
    elif args.stdin:
        payloads = [sys.stdin.buffer.read()]
    elif args.message is not None:
        payloads = [args.message.encode()]
    else:
        raise ValueError("give a MESSAGE, --file, --stdin or --stdin-lines")
    async with (
        open_client(args.url, reconnect=None, **options) as client,
        client.pipeline(max_in_flight=100) as pipe,
    ):
        if payloads is None:
            stdin = trio.wrap_file(sys.stdin.buffer)
            async for line in stdin:
                await pipe.publish(
                    args.topic, line.rstrip(b"\r\n"), qos=args.qos, retain=args.retain,
                    **props,
                )  # fmt: skip
            return
        for n in range(args.repeat):
            if n and args.interval:
                await trio.sleep(args.interval)
            for payload in payloads:
                await pipe.publish(
                    args.topic, payload, qos=args.qos, retain=args.retain, **props
                )


def _as_json(message: Message) -> str:
    record: dict[str, Any] = {
        "topic": message.topic,
        "qos": int(message.qos),
        "retain": message.retain,
    }
    try:
        record["payload"] = message.payload.decode("utf-8")
    except UnicodeDecodeError:
        record["payload_base64"] = base64.b64encode(message.payload).decode()
    props = message.properties
    properties: dict[str, Any] = {}
    for name in (
        "content_type", "response_topic", "message_expiry_interval",
        "payload_format_indicator",
    ):  # fmt: skip
        value = getattr(props, name)
        if value is not None:
            properties[name] = (
                int(value) if name == "payload_format_indicator" else value
            )
    if props.correlation_data is not None:
        properties["correlation_data_base64"] = base64.b64encode(
            props.correlation_data
        ).decode()
    if props.user_properties:
        properties["user_properties"] = [list(pair) for pair in props.user_properties]
    if props.subscription_identifiers:
        properties["subscription_identifiers"] = list(props.subscription_identifiers)
    if properties:
        record["properties"] = properties
    return json.dumps(record, ensure_ascii=False)


async def _sub(args: argparse.Namespace) -> None:
    options = _connect_options(args)
    options["clean_start"] = not args.no_clean_start
    options["session_expiry"] = args.session_expiry
    out = sys.stdout.buffer
    async with (
        open_client(args.url, **options) as client,  # the default policy: reconnect
        client.subscribe(*args.filters, qos=QoS(args.qos)) as messages,
    ):
        received = 0
        async for message in messages:
            if args.json:
                out.write(_as_json(message).encode() + b"\n")
            elif args.verbose:
                out.write(message.topic.encode() + b" " + message.payload + b"\n")
            else:
                out.write(message.payload + b"\n")
            out.flush()
            received += 1
            if args.count and received >= args.count:
                return


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; its exit code (docs/cli.md)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="trio-mqtt: %(message)s")
    command = _pub if args.command == "pub" else _sub
    try:
        trio.run(command, args)
    except KeyboardInterrupt:
        return INTERRUPTED  # the client's block sent DISCONNECT on the way out
    except ConnectRefusedError as exc:
        return _fail(REFUSED, f"the broker refused the connection: {exc}")
    except ConnectError as exc:
        return _fail(UNREACHABLE, f"no connection to {args.url}: {exc}")
    except PipelineError as exc:
        return _fail(PUBLISH_REFUSED, str(exc.failures[0].error))
    except PublishError as exc:
        return _fail(PUBLISH_REFUSED, str(exc))
    except SubscribeError as exc:
        return _fail(SUBSCRIBE_REFUSED, str(exc))
    except (MQTTError, OSError) as exc:
        return _fail(FAILED, str(exc))
    except ValueError as exc:
        return _fail(USAGE, str(exc))
    return OK


def _fail(code: int, message: str) -> int:
    sys.stderr.write(f"trio-mqtt: {message}\n")
    return code
