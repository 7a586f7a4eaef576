"""decode(encode(p)) == p for every packet and version, under any chunking of the byte stream."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from trio_mqtt import MQTTError, ProtocolVersion, RemoteProtocolError
from trio_mqtt.lowlevel import Packet, PacketReader, decode_packet, encode_packet

from .strategies import packets

VERSIONS = [ProtocolVersion.V5, ProtocolVersion.V311]


@pytest.mark.parametrize("version", VERSIONS)
@given(data=st.data())
def test_roundtrip(version: ProtocolVersion, data: st.DataObject) -> None:
    packet = data.draw(packets(version))
    assert decode_packet(encode_packet(packet, version), version) == packet


@pytest.mark.parametrize("version", VERSIONS)
@given(data=st.data())
def test_any_chunking_yields_the_same_packets(
    version: ProtocolVersion, data: st.DataObject
) -> None:
    sent: list[Packet] = data.draw(st.lists(packets(version), min_size=1, max_size=6))
    stream = b"".join(encode_packet(p, version) for p in sent)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    reader = PacketReader(version=version)
    received: list[Packet] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        received += reader.feed(stream[start:cut])
        start = cut
    assert received == sent
    assert reader.buffered == 0


@pytest.mark.parametrize("version", VERSIONS)
@given(data=st.binary(max_size=200), cut=st.integers(0, 200))
def test_arbitrary_bytes_give_packets_or_remote_protocol_error(
    version: ProtocolVersion, data: bytes, cut: int
) -> None:
    # The decoder's error contract: arbitrary input yields packets or a RemoteProtocolError, nothing else.
    reader = PacketReader(version=version, max_packet_size=1024)
    try:
        reader.feed(data[:cut])
        reader.feed(data[cut:])
    except RemoteProtocolError as exc:
        assert isinstance(exc, MQTTError)
        assert exc.reason_code.is_failure
    assert reader.buffered <= 1024


@pytest.mark.parametrize("version", VERSIONS)
@given(data=st.data())
def test_mutated_packets_never_escape_the_error_contract(
    version: ProtocolVersion, data: st.DataObject
) -> None:
    encoded = bytearray(encode_packet(data.draw(packets(version)), version))
    index = data.draw(st.integers(0, len(encoded) - 1))
    encoded[index] = data.draw(st.integers(0, 255))
    try:
        packets_out = PacketReader(version=version).feed(bytes(encoded))
    except RemoteProtocolError as exc:
        assert exc.reason_code.is_failure
    else:
        assert len(packets_out) <= 1
