"""The public surface: a reviewed list of names, clean __module__, copyable errors, no secrets shown."""

from __future__ import annotations

import copy
import pickle
import types

import pytest

import trio_mqtt
import trio_mqtt.lowlevel
from trio_mqtt import Endpoint, ReasonCode
from trio_mqtt.lowlevel import Connect, Properties

EXPECTED = {
    "ConnectError", "ConnectRefusedError", "ConnectionLostError", "Endpoint", "LocalProtocolError",
    "MQTTClient", "MQTTError", "MalformedPacketError", "Message", "NegativeAckError", "PayloadFormat",
    "Properties", "ProtocolError", "ProtocolVersion", "PublishError", "PublishResult", "QoS",
    "ReasonCode", "RemoteProtocolError", "RetainHandling", "SubscribeError",
    "Subscription", "SubscriptionStatistics", "UnsubscribeError", "Will", "__version__",
    "open_client", "topic_matches", "ReconnectPolicy", "ClientState", "Connected",
    "Disconnected", "Reconnecting", "StateChange", "StateWatcher", "NotConnectedError",
    "SessionStore", "SavedSession", "MemorySessionStore", "SQLiteSessionStore", "TLSConfig",
    "Authenticator", "ScramAuthenticator", "AuthenticationError", "Pipeline", "PipelineError",
    "PublishFailure", "ServerInfo", "Request", "Requests", "ClientHooks", "ClientStatistics",
    "CountsByQoS", "LatencyHistogram",
}  # fmt: skip


def test_all_is_the_reviewed_list() -> None:
    assert set(trio_mqtt.__all__) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED - {"__version__"}))
def test_public_objects_live_in_the_namespace(name: str) -> None:
    obj = getattr(trio_mqtt, name)
    if isinstance(obj, types.UnionType):  # a type alias: its members must be public
        assert all(arg.__module__ == "trio_mqtt" for arg in obj.__args__)
        return
    assert obj.__module__ == "trio_mqtt"
    assert obj.__doc__, f"{name} has no docstring"


EXCEPTIONS = [
    trio_mqtt.ConnectRefusedError(
        ReasonCode.NOT_AUTHORIZED, reason_string="r", server_reference="s"
    ),
    trio_mqtt.ConnectionLostError("gone", reason_code=ReasonCode.SERVER_SHUTTING_DOWN),
    trio_mqtt.RemoteProtocolError("bad", reason_code=ReasonCode.TOPIC_ALIAS_INVALID),
    trio_mqtt.MalformedPacketError("worse"),
    trio_mqtt.PublishError(
        ReasonCode.QUOTA_EXCEEDED, reason_string="full", user_properties=[("a", "b")]
    ),
    trio_mqtt.SubscribeError([ReasonCode.GRANTED_QOS_1, ReasonCode.NOT_AUTHORIZED]),
    trio_mqtt.ConnectError("no route"),
    trio_mqtt.PipelineError(
        [
            trio_mqtt.PublishFailure(
                index=3,
                topic="t",
                payload=b"p",
                qos=trio_mqtt.QoS.AT_LEAST_ONCE,
                error=trio_mqtt.PublishError(ReasonCode.NOT_AUTHORIZED),
            )
        ]
    ),
]


@pytest.mark.parametrize("exc", EXCEPTIONS, ids=lambda e: type(e).__name__)
def test_exceptions_copy_and_pickle(exc: trio_mqtt.MQTTError) -> None:
    for clone in (copy.copy(exc), copy.deepcopy(exc), pickle.loads(pickle.dumps(exc))):
        assert type(clone) is type(exc)
        assert str(clone) == str(exc)
        assert clone.__dict__ == exc.__dict__


def test_exception_messages_carry_reason_codes() -> None:
    assert (
        str(EXCEPTIONS[0])
        == "not authorized: check the credentials and the broker's access rules (NOT_AUTHORIZED (0x87): r)"
    )
    assert str(EXCEPTIONS[2]) == "bad [TOPIC_ALIAS_INVALID (0x94)]"
    assert EXCEPTIONS[5].reason_code is ReasonCode.NOT_AUTHORIZED  # type: ignore[attr-defined]


def test_secrets_stay_out_of_reprs() -> None:
    connect = Connect(
        client_id="c",
        username="u",
        password=b"hunter2",
        properties=Properties(authentication_data=b"tok3n"),
    )
    assert "hunter2" not in repr(connect)
    assert "tok3n" not in repr(connect)
    endpoint = Endpoint.from_url("mqtt://alice:s3cret@example.com")
    assert (endpoint.username, endpoint.password, endpoint.port) == (
        "alice",
        "s3cret",
        1883,
    )
    assert "s3cret" not in repr(endpoint)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://h", ("tcp", "h", 1883, False, "")),
        ("tcp://h:1", ("tcp", "h", 1, False, "")),
        ("mqtts://h", ("tcp", "h", 8883, True, "")),
        ("MQTTS://h/", ("tcp", "h", 8883, True, "")),
        ("mqtt://[::1]:9", ("tcp", "::1", 9, False, "")),
        ("ws://h", ("websocket", "h", 80, False, "/mqtt")),
        ("ws://h:8080/", ("websocket", "h", 8080, False, "/")),
        ("wss://h/a/b?x=1", ("websocket", "h", 443, True, "/a/b?x=1")),
        ("unix:///run/mosquitto.sock", ("unix", "", 0, False, "/run/mosquitto.sock")),
    ],
)
def test_urls(url: str, expected: tuple[str, str, int, bool, str]) -> None:
    endpoint = Endpoint.from_url(url)
    assert (
        endpoint.transport,
        endpoint.host,
        endpoint.port,
        endpoint.tls,
        endpoint.path,
    ) == expected
    assert Endpoint.from_url(str(endpoint)) == endpoint  # str() is a URL again


@pytest.mark.parametrize(
    "url",
    [
        "http://h",
        "mqtt://",
        "mqtt://h:99999",
        "mqtt://u:pw@h:x",
        "ws://u:pw@:80/mqtt",
        "unix://u:pw@",
        "mqtt://u:pw@h/path",
        "mqtts://u:pw@[::1",
    ],
)
def test_bad_urls_fail_early_without_the_password(url: str) -> None:
    with pytest.raises(ValueError) as info:
        Endpoint.from_url(url)
    assert "pw" not in str(info.value)


def test_url_credentials_are_percent_decoded_and_hidden() -> None:
    endpoint = Endpoint.from_url("wss://al%40ice:p%3Aw%20d@h/mqtt")
    assert (endpoint.username, endpoint.password) == ("al@ice", "p:w d")
    assert "p:w d" not in repr(endpoint)
    assert "p:w" not in str(endpoint)


async def test_bad_arguments_raise_value_error_before_connecting() -> None:
    with pytest.raises(ValueError, match="host"):
        async with trio_mqtt.open_client():
            pass
    with pytest.raises(ValueError, match="keepalive"):
        async with trio_mqtt.open_client("mqtt://127.0.0.1:1", keepalive=-1):
            pass
    with pytest.raises(ValueError, match="wildcard"):
        async with trio_mqtt.open_client(
            "mqtt://127.0.0.1:1", will=trio_mqtt.Will("a/#")
        ):
            pass


@pytest.mark.parametrize("name", trio_mqtt.lowlevel.__all__)
def test_lowlevel_objects_report_a_public_module(name: str) -> None:
    obj = getattr(trio_mqtt.lowlevel, name)
    if isinstance(obj, types.UnionType):  # a type alias: its members must be public
        assert all(a.__module__.startswith("trio_mqtt") for a in obj.__args__)
        assert not any(a.__module__.startswith("trio_mqtt._") for a in obj.__args__)
        return
    module = getattr(obj, "__module__", None)
    if module is None or isinstance(obj, int):
        return  # a constant
    assert module in ("trio_mqtt", "trio_mqtt.lowlevel"), (name, module)


def test_the_extension_points_are_the_public_classes() -> None:
    import trio_mqtt.abc

    assert trio_mqtt.abc.SessionStore is trio_mqtt.SessionStore
    assert trio_mqtt.abc.SavedSession is trio_mqtt.SavedSession
    assert trio_mqtt.abc.Authenticator is trio_mqtt.Authenticator


def test_a_will_takes_the_payloads_publish_takes() -> None:
    assert trio_mqtt.Will("t", "offline").payload == b"offline"
    assert trio_mqtt.Will("t", bytearray(b"\x00\x01")).payload == b"\x00\x01"
    assert trio_mqtt.Will("t", memoryview(b"ab")).payload == b"ab"
    with pytest.raises(TypeError, match="not int"):
        trio_mqtt.Will("t", 42)  # type: ignore[arg-type]


def test_open_client_shows_only_public_types() -> None:
    """help(open_client) names no private alias (it showed ``BrokerSpec``)."""
    import inspect

    for parameter in inspect.signature(trio_mqtt.open_client).parameters.values():
        assert "Spec" not in str(parameter.annotation), parameter
