"""The sans-IO protocol layer, for people who drive the MQTT core themselves (provisional API).

Nothing here does I/O: packets are values, :func:`encode_packet` makes bytes, and
:class:`PacketReader` turns bytes back into packets.
"""

from __future__ import annotations

from ._construct import claim_names
from ._sansio._codec import (
    MAX_PACKET_SIZE as MAX_PACKET_SIZE,
    PacketReader as PacketReader,
    decode_packet as decode_packet,
    encode_packet as encode_packet,
)
from ._sansio._packets import (
    Auth as Auth,
    ConnAck as ConnAck,
    Connect as Connect,
    Disconnect as Disconnect,
    Packet as Packet,
    PingReq as PingReq,
    PingResp as PingResp,
    PubAck as PubAck,
    PubComp as PubComp,
    Publish as Publish,
    PubRec as PubRec,
    PubRel as PubRel,
    SubAck as SubAck,
    Subscribe as Subscribe,
    SubscriptionRequest as SubscriptionRequest,
    UnsubAck as UnsubAck,
    Unsubscribe as Unsubscribe,
    Will as Will,
)
from ._sansio._properties import (
    EMPTY_PROPERTIES as EMPTY_PROPERTIES,
    Properties as Properties,
)

__all__ = [
    "EMPTY_PROPERTIES", "MAX_PACKET_SIZE", "Auth", "ConnAck", "Connect", "Disconnect", "Packet",
    "PacketReader", "PingReq", "PingResp", "Properties", "PubAck", "PubComp", "PubRec", "PubRel",
    "Publish", "SubAck", "Subscribe", "SubscriptionRequest", "UnsubAck", "Unsubscribe", "Will",
    "decode_packet", "encode_packet",
]  # fmt: skip


claim_names(__name__, __all__, globals())
