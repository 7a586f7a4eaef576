"""The public API's arguments turned into validated values: open_client()'s endpoints and
CONNECT packet, and a publish's QoS and properties."""

from __future__ import annotations

import functools
import math
import secrets
from collections.abc import Sequence
from typing import Any

import attrs

from ._config import Endpoint
from ._enums import ProtocolVersion, ReasonCode
from ._sansio._codec import MAX_PACKET_SIZE
from ._sansio._packets import Connect, Disconnect, Will
from ._sansio._properties import EMPTY_PROPERTIES, Properties
from ._topics import validate_topic_name

# CONNECT's properties, shared by the clients that ask for the same (they are frozen): a fleet
# of clients made alike keeps one, not one each (256 bytes per client).
_connect_properties = functools.lru_cache(maxsize=16)(Properties)

BrokerSpec = str | Endpoint | Sequence[str | Endpoint]
DEFAULT_MAX_PACKET_SIZE = 16 * 1024 * 1024

# (a tuple: isinstance() against ``A | B`` builds the union at every call, ~1 µs on 3.11)
_ONE_BROKER = (str, Endpoint)
# (an enum member read once: on 3.11 each read from the class goes through a slow hook)
_V311 = ProtocolVersion.V311


def resolve_endpoints(
    broker: BrokerSpec | None,
    *,
    host: str | None,
    port: int | None,
    tls: object,
    have_transport: bool,
) -> list[Endpoint]:
    """The endpoints to try, in order. ``host``/``port`` override the first one's parts.

    Raises:
        ValueError: no broker given, or an invalid URL.
    """
    if isinstance(broker, _ONE_BROKER):
        broker = [broker]
    endpoints = [
        b if isinstance(b, Endpoint) else Endpoint.from_url(b) for b in broker or ()
    ]
    if not endpoints:
        if host is None:
            if not have_transport:
                raise ValueError("give a broker URL or host=")
            return [Endpoint(host="<transport_factory>", port=0)]
        default = 8883 if tls is not None else 1883
        return [Endpoint(host=host, port=port if port is not None else default)]
    if host is not None or port is not None:
        first = endpoints[0]
        endpoints[0] = attrs.evolve(
            first, host=host or first.host, port=port or first.port
        )
    return endpoints


def build_connect(
    endpoint: Endpoint,
    *,
    client_id: str | None,
    protocol: ProtocolVersion,
    username: str | None,
    password: str | bytes | None,
    keepalive: float,
    clean_start: bool,
    session_expiry: float,
    will: Will | None,
    receive_maximum: int,
    max_packet_size: int | None,
    topic_alias_maximum: int = 0,
    user_properties: Sequence[tuple[str, str]] = (),
    request_response_information: bool = False,
    request_problem_information: bool = True,
) -> Connect:
    """The CONNECT packet every connection attempt sends (credentials from the URL unless given).

    Raises:
        ValueError: an argument out of range.
    """
    v5 = protocol is ProtocolVersion.V5
    username = username if username is not None else endpoint.username
    raw = password if password is not None else endpoint.password
    password_bytes = raw.encode("utf-8") if isinstance(raw, str) else raw
    if not 0 <= keepalive <= 65535:
        raise ValueError("keepalive must be 0..65535 seconds")
    if not 1 <= receive_maximum <= 65535:
        raise ValueError("receive_maximum must be 1..65535")
    if max_packet_size is not None and not 64 <= max_packet_size <= MAX_PACKET_SIZE:
        raise ValueError(f"max_packet_size must be 64..{MAX_PACKET_SIZE} bytes")
    if not 0 <= topic_alias_maximum <= 65535:
        raise ValueError("topic_alias_maximum must be 0..65535")
    for pair in user_properties:
        if not (
            isinstance(pair, tuple)
            and len(pair) == 2
            and all(isinstance(x, str) for x in pair)
        ):
            raise TypeError(f"user_properties must be (str, str) pairs, not {pair!r}")
    if client_id is None:
        client_id = "" if v5 else f"trio-mqtt-{secrets.token_hex(8)}"
    if will is not None:
        validate_topic_name(will.topic)
        if not v5:
            will = Will(will.topic, will.payload, will.qos, will.retain)
    properties = EMPTY_PROPERTIES
    if v5:
        properties = _connect_properties(
            session_expiry_interval=min(math.ceil(session_expiry), 0xFFFFFFFF) or None,
            receive_maximum=receive_maximum if receive_maximum != 65535 else None,
            maximum_packet_size=max_packet_size,
            topic_alias_maximum=topic_alias_maximum or None,
            user_properties=tuple((name, value) for name, value in user_properties),
            request_response_information=request_response_information or None,
            request_problem_information=None if request_problem_information else False,
        )
    return Connect(
        protocol_version=protocol,
        client_id=client_id,
        clean_start=clean_start,
        keep_alive=math.ceil(keepalive),
        username=username,
        password=password_bytes,
        will=will,
        properties=properties,
    )


def check_qos(qos: object) -> None:
    """The same words for the same mistake in publish(), subscribe() and a pipeline."""
    if qos not in (0, 1, 2):
        raise ValueError(f"qos must be 0, 1 or 2, not {qos!r}")


def publish_properties(
    protocol: ProtocolVersion,
    properties: Properties | None,
    *,
    content_type: str | None,
    payload_format_indicator: int | None,
    message_expiry_interval: int | None,
    response_topic: str | None,
    correlation_data: bytes | None,
    user_properties: Sequence[tuple[str, str]],
) -> Properties:
    """A PUBLISH's properties: ``properties`` with the keyword ones merged in (MQTT 5; 3.1.1
    has none)."""
    if protocol is _V311:
        return EMPTY_PROPERTIES
    if properties is not None and properties.topic_alias is not None:
        raise ValueError(
            "topic aliases are set by the client: open_client(..., topic_aliases=True) "
            "(one chosen by hand would be wrong after a reconnect, [MQTT-3.3.2-10])"
        )
    if (
        content_type is not None
        or payload_format_indicator is not None
        or message_expiry_interval is not None
        or response_topic is not None
        or correlation_data is not None
        or user_properties
    ):
        changes: dict[str, Any] = {
            name: value
            for name, value in (
                ("content_type", content_type),
                ("payload_format_indicator", payload_format_indicator),
                ("message_expiry_interval", message_expiry_interval),
                ("response_topic", response_topic),
                ("correlation_data", correlation_data),
            )
            if value is not None
        }
        if user_properties:
            changes["user_properties"] = tuple(user_properties)
        return attrs.evolve(properties or EMPTY_PROPERTIES, **changes)
    return properties or EMPTY_PROPERTIES


#: The DISCONNECT reason codes a client may send (section 3.14.2.1).
_CLIENT_DISCONNECT_CODES = frozenset(
    ReasonCode(code)
    for code in (
        0x00,
        0x04,
        0x80,
        0x81,
        0x82,
        0x83,
        0x90,
        0x93,
        0x94,
        0x95,
        0x96,
        0x97,
        0x98,
        0x99,
    )
)


def build_disconnect(
    connect: Connect,
    reason_code: ReasonCode,
    *,
    session_expiry: float | None,
    reason_string: str | None,
    user_properties: Sequence[tuple[str, str]],
) -> Disconnect:
    """The DISCONNECT of :meth:`MQTTClient.disconnect`, for a client that sent ``connect``.

    Raises:
        ValueError: see :meth:`MQTTClient.disconnect`.
    """
    reason_code = ReasonCode(reason_code)
    if reason_code not in _CLIENT_DISCONNECT_CODES:
        raise ValueError(f"a client may not send DISCONNECT {reason_code.describe()}")
    connected_expiry = connect.properties.session_expiry_interval
    if session_expiry is not None and session_expiry > 0 and not connected_expiry:
        raise ValueError(
            "session_expiry cannot be set on DISCONNECT when the client connected "
            "with none [MQTT-3.14.2-2]: give open_client(session_expiry=...)"
        )
    plain = (
        reason_code is ReasonCode.NORMAL_DISCONNECTION
        and session_expiry is None
        and reason_string is None
        and not user_properties
    )
    if connect.protocol_version is ProtocolVersion.V311 and not plain:
        raise ValueError(
            "an MQTT 3.1.1 DISCONNECT carries no reason code or properties"
        )
    expiry = (
        None if session_expiry is None else min(math.ceil(session_expiry), 0xFFFFFFFF)
    )
    return Disconnect(
        reason_code=reason_code,
        properties=Properties(
            session_expiry_interval=expiry,
            reason_string=reason_string,
            user_properties=tuple(user_properties),
        ),
    )
