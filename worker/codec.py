"""Encrypted Temporal payloads: an AES-256-GCM payload codec with key IDs, for rotation.

With a key configured, everything the agent's client and worker send to Temporal as a payload
(workflow and activity inputs and results, signals, queries, memos, heartbeat details, and,
with the failure converter that encodes common attributes, failure messages and stack traces)
is ciphertext on the server. Search attributes are not payloads and stay readable.

Keys come from ``TETHER_TEMPORAL_ENCRYPTION_KEYS`` (``id:base64key[,id:base64key...]``) or a
key file with one ``id base64key`` per line. The first key encrypts; every key listed
decrypts, so a rotation adds the new key first and keeps the old ones until no history that
uses them is needed. Payloads without the encrypted encoding (histories recorded before the
codec was turned on) pass through decoding unchanged, so they keep replaying.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

ENCODING = b"binary/encrypted"
METADATA_ENCODING = "encoding"
METADATA_KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
KEY_BYTES = 32
NEW_KEY_HINT = "a new key: python -c 'import worker.codec as c; print(c.new_key())'"


class KeySettingError(ValueError):
    """A key setting that cannot be used: the message names the setting and the fix."""


@dataclass(frozen=True)
class EncryptionKey:
    id: str
    secret: bytes

    def __repr__(self) -> str:  # never print the secret
        return f"EncryptionKey(id={self.id!r})"


def parse_keys(text: str, where: str) -> list[EncryptionKey]:
    """Keys from ``id:base64key`` items separated by commas or new lines (``id base64key``
    in a key file); blank lines and ``#`` comments are ignored."""
    keys: list[EncryptionKey] = []
    # Comments are whole lines (a comment may hold commas); keys are separated by both.
    lines = [line for line in text.splitlines() if not line.strip().startswith("#")]
    items = [item.strip() for line in lines for item in line.split(",")]
    items = [item for item in items if item and not item.startswith("#")]
    for number, item in enumerate(items, start=1):
        key_id, sep, encoded = item.replace(" ", ":", 1).partition(":")
        key_id, encoded = key_id.strip(), encoded.strip()
        if not sep or not key_id or not encoded:
            # Named by its position: the item itself may be mostly secret.
            raise KeySettingError(f"{where}: key {number} is not 'id:base64key'; {NEW_KEY_HINT}")
        try:
            secret = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise KeySettingError(
                f"{where}: key {key_id!r} is not valid base64; {NEW_KEY_HINT}"
            ) from exc
        if len(secret) != KEY_BYTES:
            raise KeySettingError(
                f"{where}: key {key_id!r} is {len(secret)} bytes; AES-256 needs {KEY_BYTES}; "
                f"{NEW_KEY_HINT}"
            )
        if any(k.id == key_id for k in keys):
            raise KeySettingError(f"{where}: key ID {key_id!r} is listed twice")
        keys.append(EncryptionKey(key_id, secret))
    return keys


def keys_from_environment(
    keys: str | None = None, key_file: str | Path | None = None
) -> list[EncryptionKey]:
    """The configured keys (the setting, else the file), or none: the codec is off."""
    keys = keys if keys is not None else os.environ.get("TETHER_TEMPORAL_ENCRYPTION_KEYS")
    key_file = key_file or os.environ.get("TETHER_TEMPORAL_ENCRYPTION_KEY_FILE")
    if keys:
        return parse_keys(keys, "TETHER_TEMPORAL_ENCRYPTION_KEYS")
    if key_file:
        path = Path(key_file)
        where = f"TETHER_TEMPORAL_ENCRYPTION_KEY_FILE ({path})"
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not a text file"
            raise KeySettingError(
                f"TETHER_TEMPORAL_ENCRYPTION_KEY_FILE: cannot read {path}: {why}; give the path "
                "of a file with one 'id base64key' per line"
            ) from exc
        found = parse_keys(text, where)
        if not found:
            raise KeySettingError(f"{where} holds no key: write one 'id base64key' per line")
        return found
    return []


def new_key() -> str:
    """A fresh random key, base64, for ``id:key`` settings."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over each whole serialized payload (metadata included), its key ID in the
    clear metadata; a random 96-bit nonce per payload, prepended to the ciphertext."""

    def __init__(self, keys: Sequence[EncryptionKey]) -> None:
        if not keys:
            raise KeySettingError("the encryption codec needs at least one key")
        self._active = keys[0]
        self._ciphers = {k.id: AESGCM(k.secret) for k in keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt(p) for p in payloads]

    def encrypt_all(self, payloads: Iterable[Payload]) -> list[Payload]:
        return [self._encrypt(p) for p in payloads]

    def decrypt_all(self, payloads: Iterable[Payload]) -> list[Payload]:
        return [self._decrypt(p) for p in payloads]

    def _encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        cipher = self._ciphers[self._active.id]
        data = nonce + cipher.encrypt(nonce, payload.SerializeToString(), None)
        return Payload(
            metadata={
                METADATA_ENCODING: ENCODING,
                METADATA_KEY_ID: self._active.id.encode(),
            },
            data=data,
        )

    def _decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get(METADATA_ENCODING) != ENCODING:
            return payload  # written before encryption was on: readable as it is
        key_id = payload.metadata.get(METADATA_KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise ValueError(
                f"payload encrypted with key {key_id!r}, which this process does not have "
                f"(it has {', '.join(self._ciphers)}); add it to "
                "TETHER_TEMPORAL_ENCRYPTION_KEYS after the active key"
            )
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, None)
        except (InvalidTag, ValueError) as exc:
            # A ValueError like the missing key's, so that callers (the codec server) handle
            # both alike; cryptography's InvalidTag carries no message at all.
            raise ValueError(
                f"payload encrypted with key {key_id!r} cannot be decrypted: it was altered, or "
                "encrypted with another key of the same ID"
            ) from exc
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded


def data_converter(keys: Sequence[EncryptionKey]) -> DataConverter:
    """The pydantic data converter, with the codec and failure messages encrypted too, when
    keys are set; the plain pydantic converter otherwise."""
    if not keys:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
