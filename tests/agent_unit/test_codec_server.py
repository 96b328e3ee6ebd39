"""`tether codec-server`'s HTTP side on a real port: the token is required (as a Bearer header,
or as the endpoint's first path segment for the Temporal UI), CORS answers the configured
origin only, payloads come back decoded, and a refused call leaves its keep-alive connection
usable (the Temporal UI reuses connections)."""

import asyncio
import http.client
import json
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from worker.codec import EncryptionCodec, new_key, parse_keys
from worker.codec_server import MAX_BODY_BYTES, CodecServer

UI = "http://127.0.0.1:8233"
TOKEN = "t0ken-for-tests"
SECRET = '"s3://vault/secret.csv"'
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@contextmanager
def one_connection(port: int, timeout: float) -> Iterator[http.client.HTTPConnection]:
    """One keep-alive connection to the server, as the Temporal UI holds one."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        yield conn
    finally:
        conn.close()


def new_codec(key_id: str = "k1") -> EncryptionCodec:
    return EncryptionCodec(parse_keys(f"{key_id}:{new_key()}", "test"))


@pytest.fixture
def server() -> Iterator[tuple[str, EncryptionCodec]]:
    codec = new_codec()
    with CodecServer(codec, TOKEN, [UI], port=0) as srv:
        yield srv.url, codec


# Both of uvicorn's HTTP implementations: httptools where installed (the test and control plane
# environments), h11 where not (a slim agent image).
@pytest.fixture(params=["h11", "httptools"])
def raw_server(request: pytest.FixtureRequest) -> Iterator[tuple[CodecServer, EncryptionCodec]]:
    http: Literal["h11", "httptools"] = request.param
    codec = new_codec()
    with CodecServer(codec, TOKEN, [UI], port=0, http=http) as srv:
        yield srv, codec


def sealed_body(codec: EncryptionCodec, text: str = SECRET) -> str:
    plain = Payload(metadata={"encoding": b"json/plain"}, data=text.encode())
    [sealed] = asyncio.run(codec.encode([plain]))
    return json.dumps(json_format.MessageToDict(Payloads(payloads=[sealed])))


def decoded_data(body: bytes) -> bytes:
    return json_format.ParseDict(json.loads(body), Payloads()).payloads[0].data


def test_decode_needs_the_token(server: tuple[str, EncryptionCodec]) -> None:
    url, codec = server
    body = sealed_body(codec)
    refused = httpx.post(f"{url}/decode", content=body)
    assert refused.status_code == 401 and "Bearer" in refused.json()["error"]
    wrong = httpx.post(f"{url}/decode", content=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json() == refused.json()  # nothing says how close a token was
    for answer in (
        httpx.post(f"{url}/decode", content=body, headers=AUTH),
        httpx.post(f"{url}/{TOKEN}/decode", content=body),  # the Temporal UI's endpoint form
    ):
        assert answer.status_code == 200, answer.text
        assert decoded_data(answer.content) == SECRET.encode()


def test_encode_round_trips(server: tuple[str, EncryptionCodec]) -> None:
    url, codec = server
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"typed in the UI"')
    body = json.dumps(json_format.MessageToDict(Payloads(payloads=[plain])))
    assert httpx.post(f"{url}/encode", content=body).status_code == 401
    encoded = httpx.post(f"{url}/{TOKEN}/encode", content=body)
    assert encoded.status_code == 200, encoded.text
    sealed = json_format.ParseDict(encoded.json(), Payloads())
    assert sealed.payloads[0].metadata["encryption-key-id"] == b"k1"
    assert asyncio.run(codec.decode(sealed.payloads)) == [plain]


def test_cors_answers_the_ui_origin_only(server: tuple[str, EncryptionCodec]) -> None:
    url, codec = server
    ok = httpx.options(f"{url}/decode", headers={"Origin": UI})
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == UI
    assert ok.headers["Access-Control-Allow-Credentials"] == "true"
    assert ok.headers["Vary"] == "Origin"
    assert ok.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert "X-Namespace" in ok.headers["Access-Control-Allow-Headers"]
    # The UI's preflight for the token-in-path endpoint, which carries no credentials.
    assert httpx.options(f"{url}/{TOKEN}/decode", headers={"Origin": UI}).status_code == 204
    other = httpx.options(f"{url}/decode", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    posted = httpx.post(f"{url}/decode", content=sealed_body(codec), headers={**AUTH, "Origin": UI})
    assert posted.status_code == 200 and posted.headers["Access-Control-Allow-Origin"] == UI
    refused = httpx.post(f"{url}/decode", headers={"Origin": "http://evil.example"})
    assert refused.status_code == 401 and "Access-Control-Allow-Origin" not in refused.headers


def test_garbage_is_a_400_naming_the_problem(server: tuple[str, EncryptionCodec]) -> None:
    url, _ = server
    bad = httpx.post(f"{url}/decode", content=b"{not json", headers=AUTH)
    assert bad.status_code == 400 and "Payloads JSON" in bad.json()["error"]
    not_utf8 = httpx.post(f"{url}/decode", content=b"\xff\xfe", headers=AUTH)
    assert not_utf8.status_code == 400 and "Payloads JSON" in not_utf8.json()["error"]
    assert httpx.post(f"{url}/elsewhere", headers=AUTH).status_code == 404
    # Any other path or method: 404, JSON like every answer.
    for method, path in (("GET", "/decode"), ("PUT", f"/{TOKEN}/encode"), ("OPTIONS", "/x")):
        other = httpx.request(method, f"{url}{path}", headers=AUTH)
        assert other.status_code == 404 and "/decode" in other.json()["error"], (method, path)


def test_what_it_cannot_decrypt_is_a_400_naming_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A payload of a key it lacks, or one that was altered: 400 with the codec's message; the
    log names the key ID, never the payload or the token."""
    written_with_k1 = sealed_body(new_codec("k1"))
    codec = new_codec("k2")
    altered = json.loads(sealed_body(codec))
    data = bytearray(json_format.ParseDict(altered, Payloads()).payloads[0].data)
    data[-1] ^= 1
    altered["payloads"][0]["data"] = json_format.MessageToDict(Payload(data=bytes(data)))["data"]
    caplog.set_level(logging.INFO, logger="tether.codec_server")
    with CodecServer(codec, TOKEN, port=0) as srv:
        missing = httpx.post(f"{srv.url}/decode", content=written_with_k1, headers=AUTH)
        assert missing.status_code == 400
        assert "encrypted with key 'k1', which this process does not have" in missing.text
        changed = httpx.post(f"{srv.url}/decode", content=json.dumps(altered), headers=AUTH)
        assert changed.status_code == 400
        assert "key 'k2' cannot be decrypted: it was altered" in changed.json()["error"]
        assert httpx.post(f"{srv.url}/{TOKEN}x/decode").status_code == 401
    assert "cannot decode for 127.0.0.1: payload encrypted with key 'k1'" in caplog.text
    assert "refused /decode from 127.0.0.1: no valid token" in caplog.text
    for secret in (TOKEN, "secret.csv", altered["payloads"][0]["data"]):
        assert secret not in caplog.text


# --- one keep-alive connection ------------------------------------------------------------


def post(
    conn: http.client.HTTPConnection,
    path: str,
    body: bytes | str | Iterator[bytes],
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response.status, response.read()


def test_a_refused_call_leaves_the_connection_usable(
    raw_server: tuple[CodecServer, EncryptionCodec],
) -> None:
    """The refused call's body is not read, and must not be taken for the next request."""
    srv, codec = raw_server
    body = sealed_body(codec)
    with one_connection(srv.port, timeout=10) as conn:
        status, answer = post(conn, "/decode", body)
        assert status == 401 and b"Bearer" in answer
        sock = conn.sock
        assert sock is not None
        status, answer = post(conn, "/decode", body, AUTH)
        assert status == 200, answer
        assert decoded_data(answer) == SECRET.encode()
        assert conn.sock is sock  # the same connection, not a new one


def test_refusals_then_the_path_token_on_one_connection(
    raw_server: tuple[CodecServer, EncryptionCodec],
) -> None:
    srv, codec = raw_server
    body = sealed_body(codec)
    with one_connection(srv.port, timeout=10) as conn:
        assert post(conn, "/decode", body)[0] == 401
        sock = conn.sock
        assert post(conn, "/not-the-token/decode", body)[0] == 401
        status, answer = post(conn, f"/{TOKEN}/decode", body)
        assert status == 200, answer
        assert decoded_data(answer) == SECRET.encode()
        assert sock is not None and conn.sock is sock


def test_too_large_and_garbage_then_a_good_call_on_one_connection(
    raw_server: tuple[CodecServer, EncryptionCodec],
) -> None:
    srv, codec = raw_server
    body = sealed_body(codec)
    with one_connection(srv.port, timeout=30) as conn:
        # Content-Length over the bound: refused from the header, the body left unread.
        status, answer = post(conn, "/decode", b"x" * (MAX_BODY_BYTES + 1), AUTH)
        assert status == 413 and b"body over" in answer
        sock = conn.sock
        assert sock is not None
        assert post(conn, "/decode", body, AUTH)[0] == 200
        # A chunked body (no Content-Length): refused once past the bound.
        chunks = (b"x" * (1024 * 1024) for _ in range(17))
        status, answer = post(conn, "/decode", chunks, AUTH)
        assert status == 413, answer
        assert post(conn, "/decode", b"{not json", AUTH)[0] == 400
        status, answer = post(conn, "/decode", body, AUTH)
        assert status == 200, answer
        assert decoded_data(answer) == SECRET.encode()
        assert conn.sock is sock


def test_a_declared_length_over_the_bound_is_refused_before_the_body(
    server: tuple[str, EncryptionCodec],
) -> None:
    """A gigabyte announced, nothing sent: the 413 comes anyway (nothing waits to read it)."""
    url, _ = server
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"POST /decode HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Length: {1024**3}\r\n\r\n".encode()
        )
        head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 413 "), head
