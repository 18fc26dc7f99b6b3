"""Message encoding: msgpack (or JSON), optional Fernet encryption, and the queue entry format.

A queue entry is ``[target, expires_at_ms, payload]``: ``target`` is a channel name, or a list
of channel names for a group message fanned out inside one process; ``payload`` is the encoded
user message. Nothing is injected into the user's message dict.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import msgpack

from ..exceptions import ConfigurationError, ProtocolError
from .packing import pack

__all__ = ["Entry", "MessageCodec", "decode_entry", "encode_entry"]

Entry = tuple["str | list[str]", int, bytes]


def encode_entry(target: str | list[str], expires_at_ms: int, payload: bytes) -> bytes:
    return pack((target, expires_at_ms, payload))


def decode_entry(raw: bytes) -> Entry:
    """Decode one queue entry; anything that is not a well-formed entry raises ProtocolError."""
    try:
        target, expires, payload = msgpack.unpackb(raw, raw=False, use_list=True)
    except Exception as exc:
        raise ProtocolError(f"not a channel layer entry ({len(raw)} bytes): {exc}") from None
    if not isinstance(expires, int) or not isinstance(payload, bytes):
        raise ProtocolError("channel layer entry has a bad expiry or payload type")
    if isinstance(target, str) or (
        isinstance(target, list) and all(isinstance(t, str) for t in target)
    ):
        return target, expires, payload
    raise ProtocolError("channel layer entry has a bad target")


def _msgpack_loads(raw: bytes) -> Any:
    return msgpack.unpackb(raw, raw=False, strict_map_key=False)


def _json_dumps(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


_FORMATS: dict[str, tuple[Callable[[dict[str, Any]], bytes], Callable[[bytes], Any]]] = {
    "msgpack": (pack, _msgpack_loads),
    "json": (_json_dumps, json.loads),
}


class MessageCodec:
    """Turns user message dicts into bytes and back, encrypting when keys are configured."""

    def __init__(self, serializer_format: str = "msgpack", keys: Sequence[str | bytes] = ()):
        try:
            self._dumps, self._loads = _FORMATS[serializer_format]
        except KeyError:
            raise ConfigurationError(
                "serializer_format",
                f"unknown format {serializer_format!r}",
                f"use one of {sorted(_FORMATS)}",
            ) from None
        self._crypter = _make_crypter(keys) if keys else None

    def encode(self, message: dict[str, Any]) -> bytes:
        try:
            data = self._dumps(message)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"message cannot be serialized: {exc}; send only dicts of str, bytes, "
                "numbers, bools, None, lists and dicts"
            ) from None
        return self._crypter.encrypt(data) if self._crypter else data

    def decode(self, payload: bytes) -> dict[str, Any]:
        if self._crypter is not None:
            try:
                payload = self._crypter.decrypt(payload)
            except Exception:
                raise ProtocolError(
                    "message could not be decrypted with any of symmetric_encryption_keys"
                ) from None
        try:
            message = self._loads(payload)
        except Exception as exc:
            raise ProtocolError(f"message payload is not valid: {exc}") from None
        if not isinstance(message, dict):
            raise ProtocolError(f"message payload is a {type(message).__name__}, not a dict")
        return message


def _make_crypter(keys: Sequence[str | bytes]) -> Any:
    try:
        from cryptography.fernet import Fernet, MultiFernet
    except ImportError:
        raise ConfigurationError(
            "symmetric_encryption_keys",
            "encryption needs the 'cryptography' package",
            "pip install 'channels-distributed[cryptography]'",
        ) from None
    fernets = []
    for key in keys:
        raw = key.encode() if isinstance(key, str) else key
        # Same derivation as channels_redis, so both can read each other's encrypted payloads.
        fernets.append(Fernet(base64.urlsafe_b64encode(hashlib.sha256(raw).digest())))
    return MultiFernet(fernets)
