"""KeepAlive: when the client must send PINGREQ, and when the broker is overdue.

PINGREQ goes after a keep alive interval without sending anything ([MQTT-3.1.2-20]), or
without receiving anything: a client that keeps publishing to a broker gone silent (a black
hole) must notice too. A broker that does not answer within half the interval after that is
gone, i.e. at most 1.5x keep alive after the last packet it sent us (section 3.1.2.10: the
client closes the connection).

Each PINGREQ also carries the session's count of completed inbound QoS 2 flows when it was
sent: its PINGRESP confirms the server processed the PUBCOMPs before it.
"""

from __future__ import annotations

import enum


class Due(enum.Enum):
    """What a passed deadline calls for."""

    NOTHING = "nothing"
    PING = "ping"  # send PINGREQ
    EXPIRED = "expired"  # the broker did not answer: close


class KeepAlive:
    """The keep-alive clock of one connection (times are the I/O layer's ``now``)."""

    __slots__ = ("interval", "last_received", "last_sent", "pings", "pong_deadline")

    def __init__(self) -> None:
        self.interval = 0.0  # 0: no keep alive
        self.last_sent = 0.0
        self.last_received = 0.0
        self.pong_deadline: float | None = None
        # The PINGREQs awaiting PINGRESP, oldest first: the session's completion count when
        # each was sent.
        self.pings: tuple[int, ...] = ()

    def next_deadline(self) -> float | None:
        """The PINGRESP deadline, else the next PINGREQ (an interval after the last packet
        sent or received, whichever is older); ``None`` without keep alive."""
        if not self.interval:
            return None
        if self.pong_deadline is not None:
            return self.pong_deadline
        last = self.last_sent
        if self.last_received < last:
            last = self.last_received
        return last + self.interval

    def due(self, now: float, *, reading: bool) -> Due:
        """What is due at ``now``. ``reading=False``: the I/O layer is not reading (it waits
        for the application to take messages), so a PINGRESP may be waiting unread: an overdue
        one is not held against the broker, and PINGREQ goes on every interval so that the
        broker keeps the connection ([MQTT-3.1.2-24])."""
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return Due.NOTHING
        if self.pong_deadline is not None:
            if reading:
                return Due.EXPIRED
            self.pong_deadline = None
            self.last_received = now  # not reading: silence proves nothing
            if now < self.last_sent + self.interval:
                return Due.NOTHING
        return Due.PING

    def pinged(self, completed: int, *, now: float | None = None) -> None:
        """A PINGREQ was queued when ``completed`` inbound QoS 2 flows were complete; with
        ``now``, it was for keep alive: the broker must answer within half the interval."""
        self.pings += (completed,)
        if now is not None:
            self.pong_deadline = now + self.interval / 2

    def pong(self) -> int | None:
        """A PINGRESP arrived: the completion count its PINGREQ carried, if any."""
        pings = self.pings
        confirmed = None
        if pings:
            confirmed = pings[0]
            self.pings = pings = pings[1:]
        if not pings:
            self.pong_deadline = None
        return confirmed
