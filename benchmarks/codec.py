"""Codec throughput: encode + decode of one PUBLISH (QoS 1, 64-byte payload), packets per second.

.venv/bin/python benchmarks/codec.py
"""

from __future__ import annotations

import timeit

from trio_mqtt import ProtocolVersion, QoS
from trio_mqtt.lowlevel import PacketReader, Publish, decode_packet, encode_packet


def measure(version: ProtocolVersion) -> str:
    packet = Publish(
        topic="sensors/livingroom/temperature",
        payload=b"x" * 64,
        qos=QoS.AT_LEAST_ONCE,
        packet_id=7,
    )
    data = encode_packet(packet, version)
    assert decode_packet(data, version) == packet
    reader = PacketReader(version=version)
    batch = data * 100
    n = 200_000
    encode = (
        min(timeit.repeat(lambda: encode_packet(packet, version), number=n, repeat=5))
        / n
    )
    decode = min(timeit.repeat(lambda: reader.feed(data), number=n, repeat=5)) / n
    both = (
        min(
            timeit.repeat(
                lambda: reader.feed(encode_packet(packet, version)), number=n, repeat=5
            )
        )
        / n
    )
    stream = (
        min(timeit.repeat(lambda: reader.feed(batch), number=n // 100, repeat=5)) / n
    )
    return (
        f"{version.name:5} encode {1 / encode:>10,.0f}/s  decode {1 / decode:>10,.0f}/s  "
        f"encode+decode {1 / both:>10,.0f}/s  decode (100 per chunk) {1 / stream:>10,.0f}/s"
    )


def main() -> None:
    for version in (ProtocolVersion.V5, ProtocolVersion.V311):
        print(measure(version))


if __name__ == "__main__":
    main()
