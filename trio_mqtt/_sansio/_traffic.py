"""Traffic: counters of one client's MQTT traffic, kept by its protocol machines.

Every connection of a client gets the same :class:`Traffic` (like its session state), and its
machine counts what goes through it: bytes received and taken to be sent, PUBLISH packets by
QoS, and QoS 0 messages still in the client when the connection was lost. Only the machine writes
them (one connection at a time); the client's statistics read them. Plain integer additions
on paths that run anyway: counting costs no allocation and no call.
"""

from __future__ import annotations


class Traffic:
    """A client's traffic since it was opened, over all its connections.

    Attributes:
        bytes_received: MQTT bytes received (before TLS or WebSocket framing is counted).
        bytes_sent: MQTT bytes handed to the transport.
        publishes_received: PUBLISH packets received, redeliveries included.
        received_qos1, received_qos2: of them, the QoS 1 and QoS 2 ones, counted where their
            flows are handled (QoS 0 is the rest: a QoS 0 message costs one local addition).
        sent_qos0, sent_qos1, sent_qos2: PUBLISH packets queued to be sent, by QoS, first
            sends only (a resend after a reconnect is the same message).
        qos0_dropped: QoS 0 messages queued, or taken by a write the I/O layer did not
            confirm (``MQTTConnection.data_written``), when their connection was lost: at
            most once, they are not sent again.

    Plain integer slots, not lists: 40 bytes where two lists of three took 190, per client.
    """

    __slots__ = (
        "bytes_received", "bytes_sent", "publishes_received", "qos0_dropped",
        "received_qos1", "received_qos2", "sent_qos0", "sent_qos1", "sent_qos2",
    )  # fmt: skip

    def __init__(self) -> None:
        self.bytes_received = self.bytes_sent = 0
        self.publishes_received = self.received_qos1 = self.received_qos2 = 0
        self.sent_qos0 = self.sent_qos1 = self.sent_qos2 = 0
        self.qos0_dropped = 0

    def received_by_qos(self) -> tuple[int, int, int]:
        """PUBLISH packets received, by QoS."""
        qos1, qos2 = self.received_qos1, self.received_qos2
        return (self.publishes_received - qos1 - qos2, qos1, qos2)

    def sent_by_qos(self) -> tuple[int, int, int]:
        """PUBLISH packets sent (first sends), by QoS."""
        return (self.sent_qos0, self.sent_qos1, self.sent_qos2)
