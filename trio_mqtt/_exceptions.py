"""Everything trio_mqtt raises on purpose.

::

    MQTTError                       base class
    ├── ProtocolError               the MQTT spec was violated; .reason_code is the DISCONNECT code it implies
    │   ├── LocalProtocolError      we were asked to do something the spec or the server's limits forbid
    │   └── RemoteProtocolError     the peer sent something illegal
    │       └── MalformedPacketError    bytes that cannot be decoded (0x81)
    ├── ConnectError                no MQTT connection could be established (__cause__ holds the OS error)
    │   ├── ConnectRefusedError     CONNACK carried a failure reason code
    │   └── AuthenticationError     enhanced authentication failed on our side (e.g. a server proof)
    ├── ConnectionLostError         an established connection ended
    ├── NotConnectedError           offline, and the offline queue is full or its timeout passed
    ├── PipelineError               messages of a pipeline failed (.failures says which)
    └── NegativeAckError            the broker answered an operation with a failure reason code
        ├── PublishError            PUBACK / PUBREC >= 0x80, or a poison publish (docs/errors.md)
        ├── SubscribeError          SUBACK with a failure code for at least one filter, or poison
        └── UnsubscribeError        UNSUBACK >= 0x80

Argument validation raises :class:`ValueError` or :class:`TypeError`, never an :class:`MQTTError`.
Every exception is copyable and picklable, and no message ever includes a credential.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._enums import ReasonCode


def _rebuild(
    cls: type[MQTTError], args: tuple[object, ...], state: dict[str, object]
) -> MQTTError:
    exc = cls.__new__(cls)
    Exception.__init__(exc, *args)
    exc.__dict__.update(state)
    return exc


class MQTTError(Exception):
    """Base class of every exception trio_mqtt raises on purpose."""

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.args, self.__dict__))


def _describe(reason_code: ReasonCode, reason_string: str | None) -> str:
    text = reason_code.describe()
    return f"{text}: {reason_string}" if reason_string else text


class ProtocolError(MQTTError):
    """The MQTT specification was violated.

    Attributes:
        reason_code: the DISCONNECT reason code the violation implies.
    """

    reason_code: ReasonCode

    def __init__(
        self, message: str, *, reason_code: ReasonCode = ReasonCode.PROTOCOL_ERROR
    ) -> None:
        super().__init__(message)
        self.reason_code = reason_code

    def __str__(self) -> str:
        return f"{self.args[0]} [{self.reason_code.describe()}]"


class LocalProtocolError(ProtocolError):
    """Raised when we are asked to do something the spec or the negotiated limits forbid.

    For example a QoS above the server's Maximum QoS, or a packet above its Maximum Packet Size.
    Plain argument errors (a malformed topic, ``qos=3``) raise :class:`ValueError` instead.
    """


class RemoteProtocolError(ProtocolError):
    """Raised when the peer sent something the spec forbids.

    When this comes out of the connection machinery, a DISCONNECT carrying :attr:`~ProtocolError.reason_code`
    has already been sent (MQTT 5) or the network connection closed (MQTT 3.1.1).
    """


class MalformedPacketError(RemoteProtocolError):
    """Raised when received bytes cannot be decoded as an MQTT packet (reason code 0x81)."""

    def __init__(
        self, message: str, *, reason_code: ReasonCode = ReasonCode.MALFORMED_PACKET
    ) -> None:
        super().__init__(message, reason_code=reason_code)


class ConnectError(MQTTError):
    """Raised when no MQTT connection could be established.

    The network, TLS or WebSocket error, when there is one, is in ``__cause__``.
    """


_CONNECT_HINTS: dict[ReasonCode, str] = {
    ReasonCode.UNSUPPORTED_PROTOCOL_VERSION: "the broker does not speak this MQTT version; try protocol=ProtocolVersion.V311",
    ReasonCode.CLIENT_IDENTIFIER_NOT_VALID: "the broker rejected the client identifier",
    ReasonCode.BAD_USER_NAME_OR_PASSWORD: "bad user name or password",
    ReasonCode.NOT_AUTHORIZED: "not authorized: check the credentials and the broker's access rules",
    ReasonCode.SERVER_UNAVAILABLE: "the broker is unavailable",
    ReasonCode.SERVER_BUSY: "the broker is busy; try again later",
    ReasonCode.BANNED: "this client is banned by the broker",
    ReasonCode.BAD_AUTHENTICATION_METHOD: "the broker does not support the authentication method",
    ReasonCode.USE_ANOTHER_SERVER: "the broker asks the client to use another server",
    ReasonCode.SERVER_MOVED: "the broker has moved",
    ReasonCode.CONNECTION_RATE_EXCEEDED: "connecting too often; back off",
}


class ConnectRefusedError(ConnectError):
    """Raised when the broker answered CONNECT with a failure reason code.

    MQTT 3.1.1 return codes are mapped to their MQTT 5 reason codes (1 becomes 0x84, 4 becomes 0x86, ...).

    Attributes:
        reason_code: the CONNACK reason code.
        reason_string: the broker's Reason String, if any.
        server_reference: the Server Reference property, if any.
    """

    def __init__(
        self,
        reason_code: ReasonCode,
        *,
        reason_string: str | None = None,
        server_reference: str | None = None,
    ) -> None:
        hint = _CONNECT_HINTS.get(reason_code, "the broker refused the connection")
        super().__init__(f"{hint} ({_describe(reason_code, reason_string)})")
        self.reason_code = reason_code
        self.reason_string = reason_string
        self.server_reference = server_reference


class AuthenticationError(ConnectError):
    """Enhanced authentication failed on the client's side: the authenticator refused the
    server's challenge or proof (for SCRAM: the server does not know the password, or is not
    the server it claims to be). Not retried."""


class ConnectionLostError(MQTTError):
    """Raised when an established connection ended and the client is not reconnecting.

    The cause is end of file, a reset, a keep-alive timeout, or a DISCONNECT from the broker, in
    which case :attr:`reason_code` is its reason code (``None`` otherwise).

    Attributes:
        reason_code: the broker's DISCONNECT reason code, if it sent one.
        reason_string: its Reason String, if any.
        server_reference: its Server Reference, if any (0x9C/0x9D: where to go instead).
        user_properties: its User Properties, in order.
    """

    def __init__(
        self,
        message: str,
        *,
        reason_code: ReasonCode | None = None,
        reason_string: str | None = None,
        server_reference: str | None = None,
        user_properties: Sequence[tuple[str, str]] = (),
    ) -> None:
        if reason_code is not None:
            message = f"{message} ({_describe(reason_code, reason_string)})"
        super().__init__(message)
        self.reason_code = reason_code
        self.reason_string = reason_string
        self.server_reference = server_reference
        self.user_properties = tuple(user_properties)


class NotConnectedError(MQTTError):
    """Raised by an operation that could not wait for the connection to come back: the offline
    queue was full, or ``offline_timeout`` passed before it could be sent."""


class NegativeAckError(MQTTError):
    """Raised when the broker answered an operation with a failure reason code (0x80 or above).

    Attributes:
        reason_code: the (first failing) reason code.
        reason_string: the broker's Reason String, if any.
        user_properties: the acknowledgement's User Properties.
    """

    operation = "operation"

    def __init__(
        self,
        reason_code: ReasonCode,
        *,
        reason_string: str | None = None,
        user_properties: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(
            f"the broker refused the {self.operation}: {_describe(reason_code, reason_string)}"
        )
        self.reason_code = reason_code
        self.reason_string = reason_string
        self.user_properties = tuple(user_properties)


class PublishError(NegativeAckError):
    """Raised when PUBACK or PUBREC carries a failure reason code, or when the broker ended
    the connection each time the message was sent (a poison request; ``__cause__`` is how
    the last connection ended, and ``reason_code`` its reason code, 0x80 if it had none)."""

    operation = "publish"


class SubscribeError(NegativeAckError):
    """Raised when SUBACK refuses at least one of the requested filters, when the broker's
    CONNACK said it does not support one (nothing is sent), or when the broker ended the
    connection each time the SUBSCRIBE was sent (a poison request, as for PublishError).

    Attributes:
        reason_codes: one reason code per filter, in request order (a partial failure is an error).
    """

    operation = "subscribe"

    def __init__(
        self,
        reason_codes: Sequence[ReasonCode],
        *,
        reason_string: str | None = None,
        user_properties: Sequence[tuple[str, str]] = (),
    ) -> None:
        first = next(
            (code for code in reason_codes if code.is_failure),
            ReasonCode.UNSPECIFIED_ERROR,
        )
        super().__init__(
            first, reason_string=reason_string, user_properties=user_properties
        )
        self.reason_codes = tuple(reason_codes)


class UnsubscribeError(NegativeAckError):
    """Raised when UNSUBACK carries a failure reason code."""

    operation = "unsubscribe"
