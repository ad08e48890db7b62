"""The keep-alive race: an upstream closes a pooled connection just as the gateway sends on it.

The upstream here is a raw socket server that answers the first request on a connection and closes the
connection, unanswered, when the next one arrives on it: exactly what a server with a short idle timeout does
when the gateway's request crosses its FIN. The gateway must send that request again on a fresh connection
(once), not fail the client's POST with a 502.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from .conftest import GatewayFactory

BODY = (
    b'{"id":"chatcmpl-1","object":"chat.completion","choices":[],'
    b'"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}'
)
ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)


class ClosingUpstream:
    """Answers one request per connection; a second request on the same connection gets the connection closed."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self.requests = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(connection,), daemon=True).start()

    def _handle(self, connection: socket.socket) -> None:
        with connection:
            answered = False
            while _read_request(connection):
                self.requests += 1
                if answered:
                    return  # closed under the client's second request
                connection.sendall(ANSWER)
                answered = True

    def close(self) -> None:
        self.listener.close()


def _read_request(connection: socket.socket) -> bool:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return False
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
        0,
    )
    while len(rest) < length:
        rest += connection.recv(65536)
    return True


@pytest.fixture
def upstream() -> Iterator[ClosingUpstream]:
    server = ClosingUpstream()
    yield server
    server.close()


@pytest.mark.parametrize("client", ["aiohttp", "httpx"])
def test_a_post_on_a_connection_closed_under_it_is_sent_again_on_a_fresh_one(
    client: str, upstream: ClosingUpstream, start_gateway: GatewayFactory
) -> None:
    gateway = start_gateway(
        deployments=[{"model": "gpt-4o", "deployment": "chat", "endpoint": upstream.url, "api_key": "k"}],
        upstream={"client": client},
    )
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=f"{gateway.url}/v1", headers={"authorization": "Bearer any"}) as http:
        statuses = [http.post("/chat/completions", json=body).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert upstream.connections == 3 and upstream.requests == 5  # two requests met a closing connection
