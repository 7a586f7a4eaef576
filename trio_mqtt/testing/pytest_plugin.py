"""The pytest plugin of trio_mqtt.testing, registered through the ``pytest11`` entry point:
installed with the package, no conftest needed. Async fixtures: it needs pytest-trio.

Fixtures:

* ``mqtt_broker``: a fresh in-process :class:`MQTTBroker` for the test (its faults, log and
  introspection). Tests that use it are skipped under ``--mqtt-broker-url``.
* ``mqtt_connect``: ``mqtt_connect(**open_client_options)`` opens a client (an ``async with``
  block) on the test's broker: the in-process one, or the real one ``--mqtt-broker-url``
  names, so that the same test checks that the double does not lie.
* ``mqtt_client``: one client opened with ``mqtt_connect()``.
* ``mqtt_protocol``: the protocol version the clients speak, MQTT 5 unless the test is marked
  ``@pytest.mark.mqtt_versions``, which runs it once per version.

With ``autojump_clock`` (pytest-trio), the broker's timers (keep alive, session expiry, will
delay) and the client's (reconnect backoff) run on virtual time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import pytest

from .._client import MQTTClient
from .._enums import ProtocolVersion
from .._open import open_client
from ._broker import MQTTBroker, open_broker

ConnectFactory = Callable[..., AbstractAsyncContextManager[MQTTClient]]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--mqtt-broker-url",
        default=None,
        help="run the trio_mqtt fixtures' clients against this broker (e.g. "
        "mqtt://localhost:1883) instead of the in-process one; tests that use mqtt_broker "
        "itself are skipped",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "mqtt_versions: run the test once per MQTT version (mqtt_protocol)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if (
        "mqtt_protocol" in metafunc.fixturenames
        and metafunc.definition.get_closest_marker("mqtt_versions")
    ):
        metafunc.parametrize(
            "mqtt_protocol",
            [ProtocolVersion.V5, ProtocolVersion.V311],
            ids=["v5", "v3.1.1"],
        )


@pytest.fixture
def mqtt_protocol() -> ProtocolVersion:
    """The MQTT version the fixtures' clients speak (see ``mqtt_versions``)."""
    return ProtocolVersion.V5


@pytest.fixture
async def _mqtt_double(
    request: pytest.FixtureRequest,
) -> AsyncIterator[MQTTBroker | None]:
    """The in-process broker, unless ``--mqtt-broker-url`` names a real one (then None)."""
    if request.config.getoption("--mqtt-broker-url"):
        yield None
        return
    async with open_broker() as broker:
        yield broker


@pytest.fixture
def mqtt_broker(_mqtt_double: MQTTBroker | None) -> MQTTBroker:
    """A fresh in-process broker for the test."""
    if _mqtt_double is None:
        pytest.skip(
            "uses the in-process broker's own hooks (--mqtt-broker-url is given)"
        )
    return _mqtt_double


@pytest.fixture
def mqtt_connect(
    request: pytest.FixtureRequest,
    _mqtt_double: MQTTBroker | None,
    mqtt_protocol: ProtocolVersion,
) -> ConnectFactory:
    """``mqtt_connect(**options)``: an ``open_client`` block on the test's broker."""
    url = request.config.getoption("--mqtt-broker-url")

    def connect(**options: object) -> AbstractAsyncContextManager[MQTTClient]:
        options.setdefault("protocol", mqtt_protocol)
        if _mqtt_double is None:
            return open_client(url, **options)  # type: ignore[arg-type]
        return open_client(transport_factory=_mqtt_double.connect_stream, **options)  # type: ignore[arg-type]

    return connect


@pytest.fixture
async def mqtt_client(mqtt_connect: ConnectFactory) -> AsyncIterator[MQTTClient]:
    """A client connected to the test's broker."""
    async with mqtt_connect() as client:
        yield client
