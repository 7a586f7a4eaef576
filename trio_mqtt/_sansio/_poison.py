"""Poison requests: a request the broker answers by ending the connection, every time.

A session resends what the broker has not acknowledged on the next connection ([MQTT-4.4.0-1]),
and the client asks again for a SUBSCRIBE lost with its connection. That is what makes the
session reliable, and what makes a request the broker cannot take loop forever: RabbitMQ answers
a QoS 2 PUBLISH with PUBACK (a protocol error, so we close the connection), nats-server closes the
connection on one; each reconnect resends it, and the caller's ``publish()`` never returns.

So each connection the broker ends names its suspects (:class:`Suspect`, from the machine at the
connection's end): the request the broker's offending packet named, when it named one (a PUBACK
to a QoS 2 PUBLISH), else the oldest unanswered publish flow sent on the connection and the oldest
SUBSCRIBE/UNSUBSCRIBE in flight (the broker reads in order: what it choked on is the oldest thing
it has not answered). :class:`Strikes` counts, per request, the consecutive such connections it
was a suspect of; at :data:`NAMED_STRIKES` named, or :data:`STRIKES` in all over at least the
policy's ``poison_after`` seconds, the request is poison: the client fails it to its caller and
goes on without it.

Why the time for unnamed strikes: a plain close is weak evidence. A clustered broker that is
electing leaders (nats-server, for up to 12 s here) accepts CONNECT and then closes each
connection as soon as it tries to store what arrives: a perfectly good publish is then the
oldest unanswered request of several connections in a row, and counting alone failed it in a
rolling restart. A broker that can never take the request goes on closing for as long as it is
sent; one that is recovering stops.

What counts as the broker ending the connection (:func:`ended_by_broker`): a protocol error in what
it sent, the connection closed or reset under us, or a DISCONNECT whose reason code is about a
packet (:data:`PACKET_FAULTS`). Not a keep-alive timeout (a network that went quiet, where a
resend is the cure), nor a DISCONNECT for the session or the server (taken over, shutting down,
use another server).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Final

import attrs

from .._enums import ReasonCode
from .._exceptions import (
    ConnectionLostError,
    MQTTError,
    NegativeAckError,
    ProtocolError,
    PublishError,
    RemoteProtocolError,
    SubscribeError,
    UnsubscribeError,
)

#: Consecutive connections ended with a request as the one the broker's packet named.
NAMED_STRIKES: Final = 2
#: Consecutive connections ended with a request among the suspects, named or not.
STRIKES: Final = 3

#: DISCONNECT reason codes that say the broker could not take a packet of ours.
PACKET_FAULTS: Final = frozenset(
    {
        ReasonCode.UNSPECIFIED_ERROR,
        ReasonCode.MALFORMED_PACKET,
        ReasonCode.PROTOCOL_ERROR,
        ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR,
        ReasonCode.NOT_AUTHORIZED,
        ReasonCode.TOPIC_NAME_INVALID,
        ReasonCode.TOPIC_ALIAS_INVALID,
        ReasonCode.PACKET_TOO_LARGE,
        ReasonCode.PAYLOAD_FORMAT_INVALID,
        ReasonCode.RETAIN_NOT_SUPPORTED,
        ReasonCode.QOS_NOT_SUPPORTED,
        ReasonCode.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
        ReasonCode.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
        ReasonCode.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
    }
)


@attrs.frozen
class Suspect:
    """A request that may have made the broker end a connection."""

    #: "PUBLISH" (a QoS 1/2 flow, PUBREL included), "SUBSCRIBE" or "UNSUBSCRIBE"
    kind: str
    #: its packet identifier on the connection that ended
    packet_id: int
    #: a SUBSCRIBE's or UNSUBSCRIBE's topic filters
    filters: tuple[str, ...] = ()
    #: the broker's offending packet named it (a PUBACK to a QoS 2 PUBLISH)
    named: bool = False

    @property
    def key(self) -> Hashable:
        """What identifies it on every connection: a flow keeps its packet id, a SUBSCRIBE is
        asked again under a new one, so it is known by its topic filters."""
        if self.kind == "PUBLISH":
            return self.packet_id
        return self.kind, self.filters


def ended_by_broker(error: MQTTError, *, timed_out: bool) -> bool:
    """Whether ``error`` (why a connection ended) is the broker's doing in a way a request of
    ours can cause (see the module docstring). ``timed_out``: it was our keep-alive timeout."""
    if timed_out:
        return False
    if isinstance(error, RemoteProtocolError):
        return True
    if isinstance(error, ConnectionLostError) and error.reason_code is not None:
        return error.reason_code in PACKET_FAULTS
    return isinstance(error, ConnectionLostError)  # closed or reset under us


@attrs.define
class Strikes:
    """Per request, the consecutive connections the broker ended with it among the suspects."""

    #: key -> (connections ended while it was a suspect, of which the broker's packet named it,
    #: when the first of them ended)
    counts: dict[Hashable, tuple[int, int, float]] = attrs.field(factory=dict)

    def ended(
        self, suspects: Sequence[Suspect], *, now: float = 0.0, window: float = 0.0
    ) -> list[Suspect]:
        """A connection the broker ended at ``now``, with these suspects (oldest first):
        returns the poison one, if any (a request that is not a suspect this time starts over).
        Unnamed strikes make a request poison only once they span ``window`` seconds (see
        the module docstring); named ones at once.

        At most one is poison per end, the first in ``suspects``: it explains the end, so the
        others start over. (A SUBSCRIBE renewed after the session's resent PUBLISH is in
        flight when the broker closes on that PUBLISH; it gathers strikes as fast, and must
        not be failed with it.)"""
        counts: dict[Hashable, tuple[int, int, float]] = {}
        for suspect in suspects:
            total, named, since = self.counts.get(suspect.key, (0, 0, now))
            total, named = total + 1, named + suspect.named
            if named >= NAMED_STRIKES or (total >= STRIKES and now - since >= window):
                self.counts = {}
                return [suspect]
            counts[suspect.key] = (total, named, since)
        self.counts = counts
        return []

    def clear(self) -> None:
        """A connection ended otherwise (or lasted): every count starts over."""
        if self.counts:
            self.counts = {}


@attrs.frozen
class Poison:
    """A request given up on, and the error it fails with (see :func:`poison_error`)."""

    suspect: Suspect
    error: NegativeAckError


def poison_error(suspect: Suspect, cause: MQTTError) -> NegativeAckError:
    """The error a poison request fails with: PublishError, SubscribeError (one code per
    filter) or UnsubscribeError, with the reason code the broker's end of the connection
    carried (0x80 when it carried none), and ``cause`` as its ``__cause__``."""
    code = ReasonCode.UNSPECIFIED_ERROR
    if isinstance(cause, ProtocolError | ConnectionLostError) and cause.reason_code:
        code = cause.reason_code
    why = (
        f"the broker ended the connection each time this {suspect.kind} was sent "
        f"(the last time: {cause})"
    )
    error: NegativeAckError
    if suspect.kind == "PUBLISH":
        error = PublishError(code, reason_string=why)
    elif suspect.kind == "SUBSCRIBE":
        error = SubscribeError([code] * len(suspect.filters), reason_string=why)
    else:
        error = UnsubscribeError(code, reason_string=why)
    error.__cause__ = cause
    return error
