"""The payload codec (issue 12, first part): AES-256-GCM with key IDs. Round trips, rotation,
plaintext passthrough for histories from before encryption, and settings errors that name
the fix."""

import base64

import pytest
from temporalio.api.common.v1 import Payload

from worker.codec import (
    ENCODING,
    EncryptionCodec,
    KeySettingError,
    data_converter,
    keys_from_environment,
    new_key,
    parse_keys,
)


def payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


async def test_a_payload_round_trips_and_is_unreadable_on_the_way() -> None:
    codec = EncryptionCodec(parse_keys(f"k1:{new_key()}", "test"))
    secret = payload('{"source": "s3://bucket/secret-orders.csv"}')
    [sealed] = await codec.encode([secret])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata["encryption-key-id"] == b"k1"
    assert b"secret-orders" not in sealed.SerializeToString()
    assert b"json/plain" not in sealed.SerializeToString()  # the inner metadata too
    [opened] = await codec.decode([sealed])
    assert opened == secret
    # A fresh nonce per payload: the same input never encrypts the same way.
    [again] = await codec.encode([secret])
    assert again.data != sealed.data


async def test_rotation_keeps_old_payloads_readable() -> None:
    old, new = new_key(), new_key()
    [sealed_old] = await EncryptionCodec(parse_keys(f"old:{old}", "t")).encode([payload("x")])
    rotated = EncryptionCodec(parse_keys(f"new:{new},old:{old}", "t"))
    [sealed_new] = await rotated.encode([payload("y")])
    assert sealed_new.metadata["encryption-key-id"] == b"new"
    assert [p.data for p in await rotated.decode([sealed_old, sealed_new])] == [b"x", b"y"]
    without_old = EncryptionCodec(parse_keys(f"new:{new}", "t"))
    with pytest.raises(ValueError, match=r"key 'old'.*add it to TETHER_TEMPORAL_ENCRYPTION_KEYS"):
        await without_old.decode([sealed_old])


async def test_payloads_from_before_encryption_pass_through() -> None:
    codec = EncryptionCodec(parse_keys(f"k:{new_key()}", "t"))
    plain = payload('{"run_id": "r1"}')
    assert await codec.decode([plain]) == [plain]


def test_bad_settings_name_the_setting_and_the_fix(tmp_path) -> None:  # type: ignore[no-untyped-def]
    short = base64.b64encode(b"x" * 16).decode()
    with pytest.raises(KeySettingError, match="key 'k' is 16 bytes; AES-256 needs 32"):
        parse_keys(f"k:{short}", "TETHER_TEMPORAL_ENCRYPTION_KEYS")
    with pytest.raises(KeySettingError, match=r"not 'id:base64key'.*new_key"):
        parse_keys("just-a-key", "TETHER_TEMPORAL_ENCRYPTION_KEYS")
    with pytest.raises(KeySettingError, match="not valid base64"):
        parse_keys("k:!!!", "TETHER_TEMPORAL_ENCRYPTION_KEYS")
    key = new_key()
    with pytest.raises(KeySettingError, match="listed twice"):
        parse_keys(f"k:{key},k:{key}", "TETHER_TEMPORAL_ENCRYPTION_KEYS")
    missing = tmp_path / "nope.keys"
    with pytest.raises(KeySettingError, match="cannot read"):
        keys_from_environment(keys="", key_file=missing)
    key_file = tmp_path / "agent.keys"
    key_file.write_text(f"# rotated 2026-11-30\nnew {key}\nold {new_key()}\n")
    assert [k.id for k in keys_from_environment(keys="", key_file=key_file)] == ["new", "old"]
    assert "secret" not in repr(keys_from_environment(keys="", key_file=key_file))


def test_no_key_means_the_plain_pydantic_converter() -> None:
    from temporalio.contrib.pydantic import pydantic_data_converter

    assert data_converter([]) is pydantic_data_converter
    converter = data_converter(parse_keys(f"k:{new_key()}", "t"))
    assert isinstance(converter.payload_codec, EncryptionCodec)
    assert converter.payload_converter_class is pydantic_data_converter.payload_converter_class
