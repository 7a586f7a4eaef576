"""AuthFlow: enhanced authentication (section 4.12) on one connection.

The client names an Authentication Method in CONNECT; from then on AUTH packets carry it
([MQTT-4.12.0-5]). The server continues (0x18) what the client started: the CONNECT exchange,
or a re-authentication the client starts on a live connection (0x19, section 4.12.1), which
the server ends with AUTH 0x00. Anything else is a protocol error.
"""

from __future__ import annotations

from typing import Final

import attrs

from .._enums import ReasonCode
from .._exceptions import LocalProtocolError, RemoteProtocolError
from ._events import AuthChallenged, Event, ReauthenticationCompleted
from ._outgoing import Outgoing
from ._packets import Auth
from ._properties import Properties


class AuthFlow:
    """The authentication exchanges of one connection."""

    __slots__ = ("_out", "method", "reauthenticating")

    def __init__(self, out: Outgoing | None, method: str | None) -> None:
        self._out = out
        self.method = method  # the method CONNECT named
        self.reauthenticating = False  # a re-authentication we started is under way

    def queue(
        self,
        reason_code: ReasonCode,
        data: bytes | None,
        properties: Properties,
        *,
        connecting: bool,
        connected: bool,
    ) -> None:
        """Queue AUTH ``reason_code`` (see :meth:`MQTTConnection.auth`).

        Raises:
            LocalProtocolError: no method was named, or the reason code does not fit.
        """
        if self.method is None:
            raise LocalProtocolError(
                "AUTH needs the Authentication Method of CONNECT"
            )  # [MQTT-4.12.1-1], [MQTT-3.15.2-1]
        if reason_code is ReasonCode.RE_AUTHENTICATE:
            if not connected:
                raise LocalProtocolError("re-authentication needs a live connection")
            if self.reauthenticating:
                raise LocalProtocolError("a re-authentication is already under way")
            self.reauthenticating = True
        elif reason_code is ReasonCode.CONTINUE_AUTHENTICATION:
            if not (connecting or self.reauthenticating):
                raise LocalProtocolError("no authentication exchange is under way")
        else:
            raise LocalProtocolError(
                f"a client cannot send AUTH {reason_code.describe()}"
            )
        assert self._out is not None  # (a flow with a method has an outbound buffer)
        self._out.send(
            Auth(
                reason_code=reason_code,
                properties=attrs.evolve(
                    properties,
                    authentication_method=self.method,  # [MQTT-4.12.0-5]
                    authentication_data=data,
                ),
            )
        )

    def on_auth(self, packet: Auth, *, connecting: bool, state: str) -> list[Event]:
        """The server's AUTH: a challenge, or the end of our re-authentication.

        Raises:
            RemoteProtocolError: AUTH without a negotiated method, with another method, or
                one that continues nothing.
        """
        props = packet.properties
        if self.method is None:
            # we never named an Authentication Method, so the server must not send AUTH
            raise RemoteProtocolError(
                "AUTH received but no authentication method was negotiated"
            )  # [MQTT-4.12.0-6]
        if props.authentication_method != self.method:
            raise RemoteProtocolError(
                f"AUTH names method {props.authentication_method!r}, not {self.method!r}"
            )  # [MQTT-4.12.0-5]
        code = packet.reason_code
        if code is ReasonCode.CONTINUE_AUTHENTICATION and (
            connecting or self.reauthenticating
        ):
            return [AuthChallenged(props.authentication_data, props)]
        if code is ReasonCode.SUCCESS and self.reauthenticating:
            self.reauthenticating = False
            return [ReauthenticationCompleted(props.authentication_data, props)]
        raise RemoteProtocolError(
            f"unexpected AUTH {code.describe()} while {state}"
        )  # section 4.12: the server continues or ends what the client started


#: The flow of every connection whose CONNECT named no method: shared (it holds no state, and
#: refuses everything before touching any), so that such a connection allocates none.
NO_AUTH: Final = AuthFlow(None, None)
