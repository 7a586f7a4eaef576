"""trio-mqtt: an MQTT 5.0 and 3.1.1 client for Trio."""

from __future__ import annotations

import logging as _logging

from ._auth import (
    Authenticator as Authenticator,
    ScramAuthenticator as ScramAuthenticator,
)
from ._client import MQTTClient as MQTTClient
from ._config import Endpoint as Endpoint, ReconnectPolicy as ReconnectPolicy
from ._construct import claim_names
from ._engine._stores import (
    MemorySessionStore as MemorySessionStore,
    SavedSession as SavedSession,
    SessionStore as SessionStore,
    SQLiteSessionStore as SQLiteSessionStore,
)
from ._enums import (
    PayloadFormat as PayloadFormat,
    ProtocolVersion as ProtocolVersion,
    QoS as QoS,
    ReasonCode as ReasonCode,
    RetainHandling as RetainHandling,
)
from ._exceptions import (
    AuthenticationError as AuthenticationError,
    ConnectError as ConnectError,
    ConnectionLostError as ConnectionLostError,
    ConnectRefusedError as ConnectRefusedError,
    LocalProtocolError as LocalProtocolError,
    MalformedPacketError as MalformedPacketError,
    MQTTError as MQTTError,
    NegativeAckError as NegativeAckError,
    NotConnectedError as NotConnectedError,
    ProtocolError as ProtocolError,
    PublishError as PublishError,
    RemoteProtocolError as RemoteProtocolError,
    SubscribeError as SubscribeError,
    UnsubscribeError as UnsubscribeError,
)
from ._hooks import ClientHooks as ClientHooks
from ._message import Message as Message, PublishResult as PublishResult
from ._open import open_client as open_client
from ._pipeline import (
    Pipeline as Pipeline,
    PipelineError as PipelineError,
    PublishFailure as PublishFailure,
)
from ._sansio._packets import Will as Will
from ._sansio._properties import Properties as Properties
from ._service import Request as Request, Requests as Requests
from ._statistics import (
    ClientStatistics as ClientStatistics,
    CountsByQoS as CountsByQoS,
    LatencyHistogram as LatencyHistogram,
    SubscriptionStatistics as SubscriptionStatistics,
)
from ._status import (
    ClientState as ClientState,
    Connected as Connected,
    Disconnected as Disconnected,
    Reconnecting as Reconnecting,
    ServerInfo as ServerInfo,
    StateChange as StateChange,
    StateWatcher as StateWatcher,
)
from ._subscription import Subscription as Subscription
from ._tls import TLSConfig as TLSConfig
from ._topics import topic_matches as topic_matches
from ._version import __version__ as __version__

__all__ = [
    "Endpoint", "MQTTClient", "Message", "PublishResult", "Subscription", "SubscriptionStatistics",
    "open_client", "ReconnectPolicy", "ClientState", "Connected", "Disconnected", "Reconnecting",
    "StateChange", "StateWatcher", "NotConnectedError", "SessionStore", "SavedSession", "MemorySessionStore",
    "SQLiteSessionStore", "TLSConfig", "Authenticator", "ScramAuthenticator",
    "AuthenticationError",
    "ConnectError", "ConnectRefusedError", "ConnectionLostError", "LocalProtocolError",
    "MQTTError", "MalformedPacketError", "NegativeAckError", "PayloadFormat", "Properties",
    "ProtocolError", "ProtocolVersion", "PublishError", "QoS", "ReasonCode", "RemoteProtocolError",
    "RetainHandling", "SubscribeError", "UnsubscribeError", "Will", "Pipeline", "PipelineError",
    "PublishFailure", "ServerInfo", "Request", "Requests", "ClientHooks", "ClientStatistics",
    "CountsByQoS", "LatencyHistogram",
    "__version__", "topic_matches",
]  # fmt: skip


claim_names(__name__, __all__, globals())
# Public signatures here use the packet classes (SavedSession holds PUBLISH and PUBREL packets):
# importing trio_mqtt.lowlevel makes them report it as their module, for help() and the docs.
from . import lowlevel as _lowlevel  # noqa: E402

# A library's loggers stay silent until the application configures logging (without a handler,
# Python's last resort would print the client's warnings on stderr).
_logging.getLogger("trio_mqtt").addHandler(_logging.NullHandler())
