"""trio_mqtt.testing: an in-process MQTT broker for tests, and a pytest plugin.

A test double, not a production broker: it implements what tests of MQTT clients need (both
protocol versions, QoS 0/1/2 flows, retained messages, sessions and their expiry, wills and
their delay, shared subscriptions, subscription identifiers, topic aliases, limits, refusals)
on Trio's clock, with fault injection and a log of every packet. docs/testing.md shows how to
use it from a project's own tests.
"""

from __future__ import annotations

from .._construct import claim_names
from ._broker import MQTTBroker, open_broker
from ._routing import LoggedPacket
from ._state import AuthExchange, BrokerOptions, SessionView

__all__ = [
    "AuthExchange",
    "BrokerOptions",
    "LoggedPacket",
    "MQTTBroker",
    "SessionView",
    "open_broker",
]

claim_names(__name__, __all__, globals())
