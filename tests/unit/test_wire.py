from __future__ import annotations

import pytest

from trio_mqtt import MalformedPacketError
from trio_mqtt._sansio._wire import (
    decode_string,
    decode_vbi,
    encode_string,
    encode_vbi,
    vbi_length,
)

# Section 1.5.5, table 1-1: the edges of each encoded length.
VBI_EDGES = [
    (0, "00"), (127, "7f"), (128, "8001"), (16383, "ff7f"), (16384, "808001"),
    (2097151, "ffff7f"), (2097152, "80808001"), (268435455, "ffffff7f"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "hexdata"), VBI_EDGES)
def test_vbi_edges(value: int, hexdata: str) -> None:
    raw = bytes.fromhex(hexdata)
    assert encode_vbi(value) == raw
    assert vbi_length(value) == len(raw)
    assert decode_vbi(raw, 0, len(raw)) == (value, len(raw))


@pytest.mark.parametrize("value", [-1, 268435456])
def test_vbi_out_of_range(value: int) -> None:
    with pytest.raises(ValueError, match="variable byte integer"):
        encode_vbi(value)


def test_vbi_too_long_and_truncated() -> None:
    with pytest.raises(MalformedPacketError, match="longer than four"):
        decode_vbi(bytes.fromhex("ffffffff7f"), 0, 5)
    with pytest.raises(MalformedPacketError, match="ends inside"):
        decode_vbi(bytes.fromhex("ff"), 0, 1)


def test_string_rules() -> None:
    # Section 1.5.4 example: U+2A6D4 is four bytes, and the prefix counts bytes, not characters.
    assert encode_string("A\U0002a6d4") == bytes.fromhex(
        "0005 41 f0aa9b94".replace(" ", "")
    )
    assert decode_string(encode_string("héllo"), 0, 8) == ("héllo", 8)
    with pytest.raises(ValueError, match="U\\+0000"):
        encode_string("a\x00b")  # [MQTT-1.5.4-2]
    with pytest.raises(ValueError, match="65535"):
        encode_string("x" * 65536)
    assert len(encode_string("x" * 65535)) == 65537
    with pytest.raises(UnicodeEncodeError):
        encode_string("\ud800")  # a lone surrogate cannot be encoded ([MQTT-1.5.4-1])
