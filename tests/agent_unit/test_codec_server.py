"""`tether codec-server`'s HTTP side on a real port: the token is required (as a Bearer header,
or as the endpoint's first path segment for the Temporal UI), CORS answers the configured
origin only, and payloads come back decoded."""

import asyncio
import json
import threading
from collections.abc import Iterator

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from worker.codec import EncryptionCodec, new_key, parse_keys
from worker.codec_server import CodecServer

UI = "http://127.0.0.1:8233"
TOKEN = "t0ken-for-tests"


@pytest.fixture
def server() -> Iterator[tuple[str, EncryptionCodec]]:
    codec = EncryptionCodec(parse_keys(f"k1:{new_key()}", "test"))
    srv = CodecServer(("127.0.0.1", 0), codec, TOKEN, [UI])
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", codec
    finally:
        srv.shutdown()
        srv.server_close()


def sealed_body(codec: EncryptionCodec, text: str) -> str:
    plain = Payload(metadata={"encoding": b"json/plain"}, data=text.encode())
    [sealed] = asyncio.run(codec.encode([plain]))
    return json.dumps(json_format.MessageToDict(Payloads(payloads=[sealed])))


def test_decode_needs_the_token(server: tuple[str, EncryptionCodec]) -> None:
    url, codec = server
    body = sealed_body(codec, '"s3://vault/secret.csv"')
    refused = httpx.post(f"{url}/decode", content=body)
    assert refused.status_code == 401 and "Bearer" in refused.json()["error"]
    wrong = httpx.post(f"{url}/decode", content=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    for answer in (
        httpx.post(f"{url}/decode", content=body, headers={"Authorization": f"Bearer {TOKEN}"}),
        httpx.post(f"{url}/{TOKEN}/decode", content=body),  # the Temporal UI's endpoint form
    ):
        assert answer.status_code == 200, answer.text
        decoded = json_format.ParseDict(answer.json(), Payloads())
        assert decoded.payloads[0].data == b'"s3://vault/secret.csv"'


def test_cors_answers_the_ui_origin_only(server: tuple[str, EncryptionCodec]) -> None:
    url, _ = server
    ok = httpx.options(f"{url}/decode", headers={"Origin": UI})
    assert ok.headers["Access-Control-Allow-Origin"] == UI
    assert "X-Namespace" in ok.headers["Access-Control-Allow-Headers"]
    other = httpx.options(f"{url}/decode", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_garbage_is_a_400_naming_the_problem(server: tuple[str, EncryptionCodec]) -> None:
    url, _ = server
    auth = {"Authorization": f"Bearer {TOKEN}"}
    bad = httpx.post(f"{url}/decode", content=b"{not json", headers=auth)
    assert bad.status_code == 400 and "Payloads JSON" in bad.json()["error"]
    assert httpx.post(f"{url}/elsewhere", headers=auth).status_code == 404
