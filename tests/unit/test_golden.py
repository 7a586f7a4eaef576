"""Byte-exact vectors from independent implementations, decoded and (where canonical) re-encoded.

Every vector below was captured on 2026-11-24 by a logging TCP proxy placed between the Debian
``mosquitto_pub`` / ``mosquitto_sub`` 2.0.11 command-line clients and a Mosquitto 2.0.11 broker
("C>" = sent by the client tool, "<S" = sent by the broker). The command that produced each
one is in its comment. None of these bytes came from trio_mqtt's encoder.
"""

from __future__ import annotations

import pytest

from trio_mqtt import PayloadFormat, ProtocolVersion, QoS, ReasonCode
from trio_mqtt.lowlevel import (
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    Properties,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    SubAck,
    Subscribe,
    SubscriptionRequest,
    UnsubAck,
    Unsubscribe,
    Will,
    decode_packet,
    encode_packet,
)

V5, V311 = ProtocolVersion.V5, ProtocolVersion.V311

# (name, version, hex bytes, expected packet, canonical: our encoder must produce the same bytes)
VECTORS: list[tuple[str, ProtocolVersion, str, Packet, bool]] = [
    (
        # mosquitto_pub -V 5 -i pub5 -u alice -P s3cret -k 30 --will-topic status/pub5 --will-payload offline
        #   --will-qos 1 --will-retain -D connect session-expiry-interval 300 -D connect user-property app demo
        "connect-v5-full",
        V5,
        "104b00044d51545405ee001e14110000012c260003617070000464656d6f21001400047075623500000b7374617475732f70"
        "75623500076f66666c696e650005616c6963650006733363726574",
        Connect(
            protocol_version=V5,
            client_id="pub5",
            clean_start=True,
            keep_alive=30,
            username="alice",
            password=b"s3cret",
            will=Will("status/pub5", b"offline", QoS.AT_LEAST_ONCE, True),
            properties=Properties(
                session_expiry_interval=300,
                user_properties=(("app", "demo"),),
                receive_maximum=20,
            ),
        ),
        False,  # mosquitto writes user properties before receive maximum; we write in identifier order
    ),
    (
        # the same session: CONNACK from the broker
        "connack-v5-topic-alias-max",
        V5,
        "200600000322000a",
        ConnAck(
            session_present=False,
            reason_code=ReasonCode.SUCCESS,
            properties=Properties(topic_alias_maximum=10),
        ),
        True,
    ),
    (
        # mosquitto_pub ... -t sensors/temp -m 23.5 -q 1 -r -D publish content-type text/plain
        #   -D publish message-expiry-interval 60 -D publish response-topic reply/here
        #   -D publish correlation-data abc -D publish user-property unit C
        "publish-v5-properties",
        V5,
        "3344000c73656e736f72732f74656d7000012f03000a746578742f706c61696e020000003c08000a7265706c792f6865726509"
        "0003616263260004756e697400014332332e35",
        Publish(
            topic="sensors/temp",
            payload=b"23.5",
            qos=QoS.AT_LEAST_ONCE,
            retain=True,
            packet_id=1,
            properties=Properties(
                content_type="text/plain",
                message_expiry_interval=60,
                response_topic="reply/here",
                correlation_data=b"abc",
                user_properties=(("unit", "C"),),
            ),
        ),
        False,  # property order differs from identifier order
    ),
    (
        "puback-v5-no-matching-subscribers",
        V5,
        "4003000110",
        PubAck(packet_id=1, reason_code=ReasonCode.NO_MATCHING_SUBSCRIBERS),
        True,
    ),
    ("disconnect-v5-normal", V5, "e000", Disconnect(), True),
    (
        # mosquitto_pub -V 311 -i pub311 -u bob -P pw -t a/b -m hello -q 2
        "connect-v311-credentials",
        V311,
        "101b00044d51545404c2003c00067075623331310003626f6200027077",
        Connect(
            protocol_version=V311,
            client_id="pub311",
            keep_alive=60,
            username="bob",
            password=b"pw",
        ),
        True,
    ),
    ("connack-v311-accepted", V311, "20020000", ConnAck(), True),
    (
        "publish-v311-qos2",
        V311,
        "340c0003612f62000168656c6c6f",
        Publish(topic="a/b", payload=b"hello", qos=QoS.EXACTLY_ONCE, packet_id=1),
        True,
    ),
    ("pubrec-v311", V311, "50020001", PubRec(packet_id=1), True),
    ("pubrel-v311", V311, "62020001", PubRel(packet_id=1), True),
    ("pubcomp-v311", V311, "70020001", PubComp(packet_id=1), True),
    ("disconnect-v311", V311, "e000", Disconnect(), True),
    (
        # mosquitto_pub -V 5 -i pub5q2 -t a/b -m x -q 2
        "connect-v5-minimal",
        V5,
        "101600044d5154540502003c032100140006707562357132",
        Connect(
            protocol_version=V5,
            client_id="pub5q2",
            keep_alive=60,
            properties=Properties(receive_maximum=20),
        ),
        True,
    ),
    (
        "publish-v5-qos2-no-properties",
        V5,
        "34090003612f6200010078",
        Publish(topic="a/b", payload=b"x", qos=QoS.EXACTLY_ONCE, packet_id=1),
        True,
    ),
    ("pubrec-v5-short", V5, "50020001", PubRec(packet_id=1), True),
    ("pubrel-v5-short", V5, "62020001", PubRel(packet_id=1), True),
    ("pubcomp-v5-short", V5, "70020001", PubComp(packet_id=1), True),
    (
        # mosquitto_sub -V 5 -i sub5 -t 'home/+/temperature' -t 'alerts/#' -q 2
        #   -D subscribe subscription-identifier 7 -D subscribe user-property k v
        "subscribe-v5-two-filters-subid",
        V5,
        "822c0001090b072600016b0001760012686f6d652f2b2f74656d7065726174757265020008616c657274732f2302",
        Subscribe(
            packet_id=1,
            subscriptions=(
                SubscriptionRequest(
                    topic_filter="home/+/temperature", qos=QoS.EXACTLY_ONCE
                ),
                SubscriptionRequest(topic_filter="alerts/#", qos=QoS.EXACTLY_ONCE),
            ),
            properties=Properties(
                subscription_identifiers=(7,), user_properties=(("k", "v"),)
            ),
        ),
        True,
    ),
    (
        "suback-v5-two-granted",
        V5,
        "90050001000202",
        SubAck(
            packet_id=1,
            reason_codes=(ReasonCode.GRANTED_QOS_2, ReasonCode.GRANTED_QOS_2),
        ),
        True,
    ),
    (
        # the retained message, delivered by the broker with the subscription identifier
        "publish-v5-retained-with-subid",
        V5,
        "33210018686f6d652f6b69746368656e2f74656d70657261747572650001020b073231",
        Publish(
            topic="home/kitchen/temperature",
            payload=b"21",
            qos=QoS.AT_LEAST_ONCE,
            retain=True,
            packet_id=1,
            properties=Properties(subscription_identifiers=(7,)),
        ),
        True,
    ),
    ("puback-v5-short", V5, "40020001", PubAck(packet_id=1), True),
    (
        # mosquitto_sub -V 311 -i sub311 -t 'a/#' -q 1
        "subscribe-v311",
        V311,
        "820800010003612f2301",
        Subscribe(
            packet_id=1,
            subscriptions=(
                SubscriptionRequest(topic_filter="a/#", qos=QoS.AT_LEAST_ONCE),
            ),
        ),
        True,
    ),
    (
        "suback-v311",
        V311,
        "9003000101",
        SubAck(packet_id=1, reason_codes=(ReasonCode.GRANTED_QOS_1,)),
        True,
    ),
    (
        # mosquitto_sub -V 5 -i u5 -c -x 60 -t x/y -U 'old/+' -E
        "connect-v5-persistent-session",
        V5,
        "101700044d5154540500003c08110000003c21001400027535",
        Connect(
            protocol_version=V5,
            client_id="u5",
            clean_start=False,
            keep_alive=60,
            properties=Properties(session_expiry_interval=60, receive_maximum=20),
        ),
        True,
    ),
    (
        "subscribe-v5-qos0",
        V5,
        "82090001000003782f7900",
        Subscribe(
            packet_id=1, subscriptions=(SubscriptionRequest(topic_filter="x/y"),)
        ),
        True,
    ),
    (
        "suback-v5-qos0",
        V5,
        "900400010000",
        SubAck(packet_id=1, reason_codes=(ReasonCode.GRANTED_QOS_0,)),
        True,
    ),
    (
        "unsubscribe-v5",
        V5,
        "a20a00020000056f6c642f2b",
        Unsubscribe(packet_id=2, topic_filters=("old/+",)),
        True,
    ),
    (
        "unsuback-v5-no-subscription-existed",
        V5,
        "b00400020011",
        UnsubAck(packet_id=2, reason_codes=(ReasonCode.NO_SUBSCRIPTION_EXISTED,)),
        True,
    ),
    (
        # mosquitto_sub -V 311 -i u311 -c -t x/y -U 'old/#' -E
        "unsubscribe-v311",
        V311,
        "a209000200056f6c642f23",
        Unsubscribe(packet_id=2, topic_filters=("old/#",)),
        True,
    ),
    ("unsuback-v311", V311, "b0020002", UnsubAck(packet_id=2), True),
]


@pytest.mark.parametrize(
    ("name", "version", "hexdata", "expected", "canonical"),
    VECTORS,
    ids=[v[0] for v in VECTORS],
)
def test_vector_decodes(
    name: str, version: ProtocolVersion, hexdata: str, expected: Packet, canonical: bool
) -> None:
    assert decode_packet(bytes.fromhex(hexdata), version) == expected


@pytest.mark.parametrize(
    ("name", "version", "hexdata", "expected"),
    [v[:4] for v in VECTORS if v[4]],
    ids=[v[0] for v in VECTORS if v[4]],
)
def test_canonical_vector_reencodes(
    name: str, version: ProtocolVersion, hexdata: str, expected: Packet
) -> None:
    assert encode_packet(expected, version).hex() == hexdata


@pytest.mark.parametrize(
    ("name", "version", "hexdata", "expected"),
    [v[:4] for v in VECTORS if not v[4]],
    ids=[v[0] for v in VECTORS if not v[4]],
)
def test_noncanonical_vector_reencodes_to_equal_packet(
    name: str, version: ProtocolVersion, hexdata: str, expected: Packet
) -> None:
    ours = encode_packet(expected, version)
    assert len(ours) == len(bytes.fromhex(hexdata))
    assert decode_packet(ours, version) == expected


def test_payload_format_indicator_is_typed() -> None:
    packet = decode_packet(bytes.fromhex("300a0003612f620201017879"), V5)
    assert isinstance(packet, Publish)
    assert packet.properties.payload_format_indicator is PayloadFormat.UTF8
    assert packet.payload == b"xy"
