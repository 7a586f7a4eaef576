"""Hypothesis strategies for every packet of both protocol versions."""

from __future__ import annotations

from hypothesis import strategies as st

from trio_mqtt import PayloadFormat, ProtocolVersion, QoS, ReasonCode, RetainHandling
from trio_mqtt._enums import PacketType
from trio_mqtt._sansio._fields import ALLOWED_REASON_CODES
from trio_mqtt.lowlevel import (
    Auth,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PingReq,
    PingResp,
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
)

V5, V311 = ProtocolVersion.V5, ProtocolVersion.V311

text = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12
)
topic_level = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00/+#"),
    max_size=6,
)
topics = st.lists(topic_level, min_size=1, max_size=4).map("/".join).filter(bool)
filters = st.one_of(
    topics,
    st.lists(st.one_of(topic_level, st.just("+")), min_size=1, max_size=4)
    .map("/".join)
    .filter(bool),
    topics.map(lambda t: t + "/#"),
    st.just("#"),
)
binary = st.binary(max_size=16)
packet_ids = st.integers(1, 65535)
u16 = st.integers(0, 65535)
u32 = st.integers(0, 2**32 - 1)
qos = st.sampled_from(list(QoS))
pairs = st.lists(st.tuples(text, text), max_size=3).map(tuple)


def properties(**fields: st.SearchStrategy[object]) -> st.SearchStrategy[Properties]:
    """Properties with any subset of ``fields`` set."""
    return st.fixed_dictionaries({}, optional={"user_properties": pairs, **fields}).map(
        lambda kw: Properties(**kw)
    )  # type: ignore[arg-type]


message_props = {
    "payload_format_indicator": st.sampled_from(list(PayloadFormat)),
    "message_expiry_interval": u32,
    "content_type": text,
    "response_topic": topics,
    "correlation_data": binary,
}


def reason(packet_type: PacketType) -> st.SearchStrategy[ReasonCode]:
    return st.sampled_from(sorted(ALLOWED_REASON_CODES[packet_type]))


def wills(v5: bool) -> st.SearchStrategy[Will]:
    props = (
        properties(**message_props, will_delay_interval=u32)
        if v5
        else st.just(Properties())
    )
    return st.builds(Will, topics, binary, qos, st.booleans(), properties=props)


def packets(version: ProtocolVersion) -> st.SearchStrategy[Packet]:
    v5 = version is V5
    none = st.just(Properties())

    def props(**fields: st.SearchStrategy[object]) -> st.SearchStrategy[Properties]:
        return properties(**fields) if v5 else none

    def acks(
        cls: type[PubAck | PubRec | PubRel | PubComp], packet_type: PacketType
    ) -> st.SearchStrategy[Packet]:
        return st.builds(
            cls, packet_id=packet_ids,
            reason_code=reason(packet_type) if v5 else st.just(ReasonCode.SUCCESS),
            properties=props(reason_string=text),
        )  # fmt: skip

    username = st.none() | text
    connect = st.builds(
        Connect, protocol_version=st.just(version), client_id=text, clean_start=st.booleans(),
        keep_alive=u16, username=username, password=st.none() | binary, will=st.none() | wills(v5),
        properties=props(
            session_expiry_interval=u32, receive_maximum=st.integers(1, 65535), maximum_packet_size=st.integers(1, 2**32 - 1),
            topic_alias_maximum=u16, request_response_information=st.booleans(), request_problem_information=st.booleans(),
            authentication_method=text, authentication_data=binary,
        ),
    ).filter(lambda c: v5 or c.password is None or c.username is not None)  # fmt: skip
    connack_codes = reason(PacketType.CONNACK) if v5 else st.sampled_from(
        [ReasonCode.SUCCESS, ReasonCode.UNSUPPORTED_PROTOCOL_VERSION, ReasonCode.CLIENT_IDENTIFIER_NOT_VALID,
         ReasonCode.SERVER_UNAVAILABLE, ReasonCode.BAD_USER_NAME_OR_PASSWORD, ReasonCode.NOT_AUTHORIZED]
    )  # fmt: skip
    connack = st.builds(
        ConnAck, session_present=st.booleans(), reason_code=connack_codes,
        properties=props(
            session_expiry_interval=u32, receive_maximum=st.integers(1, 65535), maximum_qos=st.sampled_from([QoS(0), QoS(1)]),
            retain_available=st.booleans(), maximum_packet_size=st.integers(1, 2**32 - 1), assigned_client_identifier=text,
            topic_alias_maximum=u16, reason_string=text, wildcard_subscription_available=st.booleans(),
            subscription_identifier_available=st.booleans(), shared_subscription_available=st.booleans(),
            server_keep_alive=u16, response_information=text, server_reference=text,
        ),
    ).filter(lambda c: not (c.session_present and c.reason_code.is_failure))  # fmt: skip

    @st.composite
    def publish(draw: st.DrawFn) -> Publish:
        level = draw(qos)
        return Publish(
            topic=draw(topics), payload=draw(st.binary(max_size=300)), qos=level, retain=draw(st.booleans()),
            dup=draw(st.booleans()) if level else False, packet_id=draw(packet_ids) if level else None,
            properties=draw(props(**message_props, topic_alias=st.integers(1, 65535),
                                   subscription_identifiers=st.lists(st.integers(1, 268_435_455), max_size=2).map(tuple))),
        )  # fmt: skip

    subscription = st.builds(
        SubscriptionRequest, topic_filter=filters, qos=qos,
        no_local=st.booleans() if v5 else st.just(False), retain_as_published=st.booleans() if v5 else st.just(False),
        retain_handling=st.sampled_from(list(RetainHandling)) if v5 else st.just(RetainHandling.SEND_ON_SUBSCRIBE),
    )  # fmt: skip
    subscribe = st.builds(
        Subscribe, packet_id=packet_ids, subscriptions=st.lists(subscription, min_size=1, max_size=3).map(tuple),
        properties=props(subscription_identifiers=st.integers(1, 268_435_455).map(lambda i: (i,))),
    )  # fmt: skip
    suback_codes = reason(PacketType.SUBACK) if v5 else st.sampled_from(
        [ReasonCode.GRANTED_QOS_0, ReasonCode.GRANTED_QOS_1, ReasonCode.GRANTED_QOS_2, ReasonCode.UNSPECIFIED_ERROR]
    )  # fmt: skip
    suback = st.builds(
        SubAck,
        packet_id=packet_ids,
        reason_codes=st.lists(suback_codes, min_size=1, max_size=3).map(tuple),
        properties=props(reason_string=text),
    )
    unsubscribe = st.builds(
        Unsubscribe,
        packet_id=packet_ids,
        topic_filters=st.lists(filters, min_size=1, max_size=3).map(tuple),
        properties=props(),
    )
    unsuback = st.builds(
        UnsubAck, packet_id=packet_ids,
        reason_codes=st.lists(reason(PacketType.UNSUBACK), min_size=1, max_size=3).map(tuple) if v5 else st.just(()),
        properties=props(reason_string=text),
    )  # fmt: skip
    disconnect = st.builds(
        Disconnect, reason_code=reason(PacketType.DISCONNECT) if v5 else st.just(ReasonCode.SUCCESS),
        properties=props(session_expiry_interval=u32, reason_string=text, server_reference=text),
    )  # fmt: skip
    options = [
        connect, connack, publish(), acks(PubAck, PacketType.PUBACK), acks(PubRec, PacketType.PUBREC),
        acks(PubRel, PacketType.PUBREL), acks(PubComp, PacketType.PUBCOMP), subscribe, suback, unsubscribe,
        unsuback, st.just(PingReq()), st.just(PingResp()), disconnect,
    ]  # fmt: skip
    if v5:
        options.append(
            st.builds(
                Auth,
                reason_code=reason(PacketType.AUTH),
                properties=props(
                    authentication_method=text,
                    authentication_data=binary,
                    reason_string=text,
                ),
            )
        )
    return st.one_of(options)
