"""The gateway's response writer (http/cycle.py) checks header names and values as uvicorn does, more cheaply."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from uvicorn.protocols.http.httptools_impl import HEADER_RE, HEADER_VALUE_RE

from aoai_gateway.http.cycle import NAME_BYTES, VALUE_BYTES

from .servers import AsgiServer


def test_the_byte_tables_forbid_exactly_what_uvicorns_expressions_forbid() -> None:
    for byte in range(256):
        one = bytes((byte,))
        assert bool(one.translate(None, NAME_BYTES)) == (HEADER_RE.search(one) is not None), byte
        assert bool(one.translate(None, VALUE_BYTES)) == (HEADER_VALUE_RE.search(one) is not None), byte


def headers_app(headers: list[tuple[bytes, bytes]]) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            await send({"type": f"{message['type']}.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


@pytest.mark.parametrize(
    "header",
    [
        (b"x-split", b"a\r\nset-cookie: stolen=1"),
        (b"x-nul", b"a\x00b"),
        (b"x-escape", b"\x1b[31mred"),
        (b"x-del", b"a\x7f"),
        (b"bad name", b"v"),
        (b"x-colon:", b"v"),
        (b"x-\x01", b"v"),
    ],
)
def test_a_forbidden_byte_in_a_response_header_never_reaches_the_client(header: tuple[bytes, bytes]) -> None:
    """As under uvicorn's own writer: the app's error is logged and the connection closed, nothing written."""
    server = AsgiServer(headers_app([(b"content-type", b"text/plain"), header]))
    with server, pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        httpx.get(server.url + "/", timeout=60)


def test_tabs_and_non_ascii_bytes_in_values_pass_as_they_are() -> None:
    value = "caf\xe9\tbar".encode("latin-1")
    with AsgiServer(headers_app([(b"x-fine", value)])) as server:
        answer = httpx.get(server.url + "/", timeout=60)
    assert answer.status_code == 200 and (b"x-fine", value) in answer.headers.raw


def test_names_are_sent_lower_case_and_the_ones_the_writer_reads_still_count() -> None:
    """Known names come from a table after their first use: the second answer is written as the first was."""
    headers = [(b"X-Mixed-Case", b"1"), (b"Content-Length", b"2"), (b"Connection", b"Keep-Alive, Close")]
    with AsgiServer(headers_app(headers)) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        for _ in range(2):
            answer = client.get("/")
            assert answer.status_code == 200 and answer.content == b"ok"
            assert (b"x-mixed-case", b"1") in answer.headers.raw
            assert answer.headers["connection"] == "Keep-Alive, Close"  # and the server closes after it
            assert answer.headers.get("transfer-encoding") is None  # the length was read: no chunked encoding
