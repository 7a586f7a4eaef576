"""A catalogue of malformed and forbidden inputs: each must raise its specific error and reason code.

The bytes are written by hand from the spec, never produced by our encoder.
"""

from __future__ import annotations

import pytest

from trio_mqtt import (
    MalformedPacketError,
    ProtocolVersion,
    ReasonCode,
    RemoteProtocolError,
)
from trio_mqtt.lowlevel import PacketReader, decode_packet

V5, V311 = ProtocolVersion.V5, ProtocolVersion.V311
MAL, PROTO = ReasonCode.MALFORMED_PACKET, ReasonCode.PROTOCOL_ERROR


def f(first: int, body: str) -> str:
    """A packet from its first byte and body (hex, spaces allowed), with a one-byte remaining length."""
    raw = bytes.fromhex(body.replace(" ", ""))
    assert len(raw) < 128
    return bytes((first, len(raw))).hex() + raw.hex()


# (id, version, hex, expected reason code, fragment of the message)
CASES: list[tuple[str, ProtocolVersion, str, ReasonCode, str]] = [
    ("reserved-type-0", V5, "0000", MAL, "type 0"),
    ("auth-in-v311", V311, "f000", MAL, "reserved in MQTT 3.1.1"),
    (
        "vbi-five-bytes",
        V5,
        "30ffffffff01",
        MAL,
        "longer than four bytes",
    ),  # section 1.5.5
    ("pingreq-flags", V5, "c100", MAL, "fixed header flags"),  # [MQTT-2.1.3-1]
    (
        "pubrel-flags-zero",
        V5,
        f(0x60, "0001"),
        MAL,
        "fixed header flags",
    ),  # [MQTT-3.6.1-1]
    (
        "subscribe-flags-zero",
        V5,
        f(0x80, "0001 00 0003 782f79 00"),
        MAL,
        "fixed header flags",
    ),  # [MQTT-3.8.1-1]
    (
        "unsubscribe-flags-zero",
        V5,
        f(0xA0, "0001 00 0001 61"),
        MAL,
        "fixed header flags",
    ),  # [MQTT-3.10.1-1]
    ("connack-flags", V5, f(0x21, "00 00 00"), MAL, "fixed header flags"),
    ("publish-qos3", V5, f(0x36, "0001 61 0001 00"), MAL, "QoS 3"),  # [MQTT-3.3.1-4]
    ("publish-dup-qos0", V5, f(0x38, "0001 61 00"), PROTO, "DUP"),  # [MQTT-3.3.1-2]
    (
        "publish-plus-topic",
        V5,
        f(0x30, "0003 612f2b 00"),
        PROTO,
        "wildcard",
    ),  # [MQTT-3.3.2-2]
    ("publish-hash-topic", V311, f(0x30, "0001 23"), PROTO, "wildcard"),
    (
        "publish-empty-topic-v311",
        V311,
        f(0x30, "0000"),
        PROTO,
        "empty topic",
    ),  # [MQTT-4.7.3-1]
    ("publish-empty-topic-no-alias-v5", V5, f(0x30, "0000 00"), PROTO, "empty topic"),
    ("publish-topic-length-overruns", V5, f(0x30, "0005 61"), MAL, "claims 5 bytes"),
    (
        "publish-packet-id-zero",
        V5,
        f(0x32, "0001 61 0000 00"),
        PROTO,
        "identifier 0",
    ),  # [MQTT-2.2.1-3]
    ("publish-truncated-packet-id", V311, f(0x32, "0001 61 00"), MAL, "ends before"),
    ("utf8-invalid-byte", V5, f(0x30, "0001 ff 00"), MAL, "UTF-8"),  # [MQTT-1.5.4-1]
    (
        "utf8-surrogate",
        V5,
        f(0x30, "0003 eda080 00"),
        MAL,
        "UTF-8",
    ),  # U+D800: [MQTT-1.5.4-1]
    ("utf8-overlong", V5, f(0x30, "0002 c0af 00"), MAL, "UTF-8"),
    ("utf8-null", V5, f(0x30, "0003 610062 00"), MAL, "U+0000"),  # [MQTT-1.5.4-2]
    ("property-length-overruns", V5, f(0x30, "0001 61 09 01"), MAL, "runs past"),
    (
        "property-unknown-id",
        V5,
        f(0x30, "0001 61 02 0505"),
        MAL,
        "unknown property",
    ),  # 0x05 is no property
    (
        "property-wrong-packet",
        V5,
        f(0x30, "0001 61 05 1100000001"),
        MAL,
        "not allowed in PUBLISH",
    ),  # section 2.2.2.2
    (
        "property-wrong-packet-puback",
        V5,
        f(0x40, "0001 00 03 230001"),
        MAL,
        "not allowed in PUBACK",
    ),
    (
        "property-in-will-only",
        V5,
        f(0x30, "0001 61 05 1800000001"),
        MAL,
        "not allowed in PUBLISH",
    ),  # will delay
    (
        "property-duplicate",
        V5,
        f(0x30, "0001 61 08 03000161 03000162"),
        PROTO,
        "more than once",
    ),
    ("property-truncated-u32", V5, f(0x30, "0001 61 03 020000"), MAL, "truncated"),
    (
        "property-flag-out-of-range",
        V5,
        f(0x30, "0001 61 02 0102"),
        PROTO,
        "must be 0 or 1",
    ),
    (
        "property-topic-alias-zero",
        V5,
        f(0x30, "0001 61 03 230000"),
        PROTO,
        "must not be 0",
    ),  # [MQTT-3.3.2-8]
    (
        "property-subscription-id-zero",
        V5,
        f(0x30, "0001 61 02 0b00"),
        PROTO,
        "must not be 0",
    ),
    (
        "property-string-pair-truncated",
        V5,
        f(0x30, "0001 61 05 2600016b00"),
        MAL,
        "ends inside a length",
    ),
    (
        "connack-receive-maximum-zero",
        V5,
        f(0x20, "00 00 03 210000"),
        PROTO,
        "must not be 0",
    ),
    (
        "connack-maximum-packet-size-zero",
        V5,
        f(0x20, "00 00 05 2700000000"),
        PROTO,
        "must not be 0",
    ),
    ("connack-maximum-qos-2", V5, f(0x20, "00 00 02 2402"), PROTO, "must be 0 or 1"),
    (
        "connack-reserved-ack-flags",
        V5,
        f(0x20, "02 00 00"),
        MAL,
        "reserved CONNACK",
    ),  # [MQTT-3.2.2-1]
    (
        "connack-session-present-on-failure",
        V5,
        f(0x20, "01 87 00"),
        PROTO,
        "session present",
    ),  # [MQTT-3.2.2-6]
    ("connack-unknown-v311-code", V311, f(0x20, "00 06"), MAL, "return code"),
    ("connack-invalid-reason", V5, f(0x20, "00 01 00"), MAL, "not a valid reason code"),
    ("connack-trailing-bytes", V311, f(0x20, "00 00 00"), MAL, "unexpected bytes"),
    ("connack-too-short", V5, f(0x20, "00"), MAL, "shorter than two bytes"),
    (
        "puback-invalid-reason",
        V5,
        f(0x40, "0001 82"),
        MAL,
        "not a valid reason code",
    ),  # 0x82 not for PUBACK
    ("puback-unknown-reason", V5, f(0x40, "0001 33"), MAL, "not a valid reason code"),
    ("puback-v311-long", V311, f(0x40, "0001 00"), MAL, "remaining length of 2"),
    ("puback-truncated", V5, f(0x40, "00"), MAL, "ends before"),
    (
        "pubcomp-trailing-after-properties",
        V5,
        f(0x70, "0001 00 00 ff"),
        MAL,
        "unexpected bytes",
    ),
    ("suback-no-codes", V5, f(0x90, "0001 00"), MAL, "without reason codes"),
    (
        "suback-v311-bad-code",
        V311,
        f(0x90, "0001 03"),
        MAL,
        "return code",
    ),  # [MQTT-3.9.3-2]
    ("suback-v5-bad-code", V5, f(0x90, "0001 00 03"), MAL, "not a valid reason code"),
    ("unsuback-v5-no-codes", V5, f(0xB0, "0001 00"), MAL, "without reason codes"),
    ("pingresp-with-body", V5, f(0xD0, "00"), MAL, "unexpected bytes"),
    ("disconnect-v311-with-body", V311, f(0xE0, "00"), MAL, "remaining length of 0"),
    ("disconnect-invalid-reason", V5, f(0xE0, "10"), MAL, "not a valid reason code"),
    ("auth-invalid-reason", V5, f(0xF0, "01 00"), MAL, "not a valid reason code"),
    (
        "connect-bad-protocol-name",
        V5,
        f(0x10, "0004 4d515458 05 02 003c 00 0000"),
        MAL,
        "protocol name",
    ),  # [MQTT-3.1.2-1]
    (
        "connect-unsupported-level",
        V5,
        f(0x10, "0004 4d515454 03 02 003c 0000"),
        ReasonCode.UNSUPPORTED_PROTOCOL_VERSION,
        "protocol level 3",
    ),
    (
        "connect-reserved-flag",
        V311,
        f(0x10, "0004 4d515454 04 03 003c 0000"),
        MAL,
        "reserved CONNECT flag",
    ),  # [MQTT-3.1.2-3]
    (
        "connect-will-qos-without-will",
        V311,
        f(0x10, "0004 4d515454 04 0a 003c 0000"),
        MAL,
        "without the will flag",
    ),  # [MQTT-3.1.2-11]
    (
        "connect-will-qos3",
        V311,
        f(0x10, "0004 4d515454 04 1e 003c 0000"),
        MAL,
        "will QoS 3",
    ),  # [MQTT-3.1.2-12]
    (
        "connect-password-without-user-v311",
        V311,
        f(0x10, "0004 4d515454 04 42 003c 0000 0000"),
        MAL,
        "password flag",
    ),  # [MQTT-3.1.2-22]
    (
        "connect-trailing-bytes",
        V311,
        f(0x10, "0004 4d515454 04 02 003c 0000 ff"),
        MAL,
        "unexpected bytes",
    ),
    ("connect-truncated-header", V311, f(0x10, "0004 4d515454"), MAL, "truncated"),
    (
        "connect-truncated-will",
        V5,
        f(0x10, "0004 4d515454 05 06 003c 00 0000 00 0001"),
        MAL,
        "claims 1 bytes",
    ),
    (
        "subscribe-no-filters",
        V5,
        f(0x82, "0001 00"),
        PROTO,
        "without topic filters",
    ),  # [MQTT-3.8.3-2]
    (
        "subscribe-reserved-option-bits",
        V5,
        f(0x82, "0001 00 0001 61 40"),
        MAL,
        "reserved subscription option",
    ),  # [MQTT-3.8.3-5]
    (
        "subscribe-v311-option-bits",
        V311,
        f(0x82, "0001 0001 61 04"),
        MAL,
        "reserved subscription option",
    ),
    ("subscribe-qos3", V5, f(0x82, "0001 00 0001 61 03"), MAL, "QoS 3"),
    (
        "subscribe-retain-handling-3",
        V5,
        f(0x82, "0001 00 0001 61 30"),
        PROTO,
        "retain handling 3",
    ),
    (
        "subscribe-no-local-shared",
        V5,
        f(0x82, "0001 00 0009 247368617265 2f672f61 04".replace("2f672f61", "2f672f")),
        PROTO,
        "no_local",
    ),  # [MQTT-3.8.3-4]
    ("subscribe-missing-options", V5, f(0x82, "0001 00 0001 61"), MAL, "options"),
    (
        "subscribe-two-subscription-ids",
        V5,
        f(0x82, "0001 04 0b01 0b02 0001 61 00"),
        PROTO,
        "more than one subscription identifier",
    ),
    (
        "unsubscribe-no-filters",
        V5,
        f(0xA2, "0001 00"),
        PROTO,
        "without topic filters",
    ),  # [MQTT-3.10.3-2]
]


def _bytes(hexdata: str) -> bytes:
    return bytes.fromhex(hexdata.replace(" ", ""))


@pytest.mark.parametrize(
    ("name", "version", "hexdata", "code", "fragment"), CASES, ids=[c[0] for c in CASES]
)
def test_malformed(
    name: str, version: ProtocolVersion, hexdata: str, code: ReasonCode, fragment: str
) -> None:
    expected = MalformedPacketError if code is MAL else RemoteProtocolError
    with pytest.raises(expected) as info:
        decode_packet(_bytes(hexdata), version)
    assert info.value.reason_code is code
    assert fragment in str(info.value)


def test_catalogue_is_large_and_distinct() -> None:
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)
    assert len({c[2].replace(" ", "") for c in CASES}) == len(CASES)


def test_oversized_packet_refused_before_body_is_buffered() -> None:
    reader = PacketReader(max_packet_size=1024)
    # A PUBLISH announcing 268,435,455 bytes: refused from its five header bytes alone.
    with pytest.raises(RemoteProtocolError) as info:
        reader.feed(b"\x30\xff\xff\xff\x7f")
    assert info.value.reason_code is ReasonCode.PACKET_TOO_LARGE
    assert reader.buffered == 0


def test_oversized_limit_counts_the_fixed_header() -> None:
    reader = PacketReader(max_packet_size=10)
    assert (
        len(reader.feed(bytes.fromhex("30080001 6100") + b"abcd")) == 1
    )  # 10 bytes: accepted
    with pytest.raises(RemoteProtocolError, match="11-byte packet"):
        reader.feed(bytes.fromhex("30090001 6100"))


def test_reader_stays_broken_after_an_error() -> None:
    reader = PacketReader()
    with pytest.raises(MalformedPacketError):
        reader.feed(b"\x00\x00")
    with pytest.raises(MalformedPacketError):
        reader.feed(b"\xc0\x00")


def test_decode_packet_refuses_spare_bytes() -> None:
    with pytest.raises(MalformedPacketError, match="exactly one"):
        decode_packet(b"\xc0\x00\xc0")
