"""Forward-proxy mode: the OpenAI SDK with `https_proxy` reaches the gateway's deployments through a CONNECT
tunnel it trusts by the gateway's CA; everything else on the proxy port is refused, and every wait is bounded."""

from __future__ import annotations

import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from openai import OpenAI

from aoai_gateway.app import create_app
from aoai_gateway.forward_proxy.ca import CA_FILE, CA_KEY_FILE, CertificateAuthority
from aoai_gateway.server import DrainingServer, uvicorn_options

from .conftest import EMULATOR_KEY, gateway_settings
from .servers import AsgiServer, child_environ, wait_until


class ProxyGateway:
    """The gateway under uvicorn as `serve` runs it: the main port and the forward proxy's port."""

    def __init__(self, upstream: str, data_dir: Path, loop: str = "asyncio", **overrides: Any) -> None:
        proxy = {"enabled": True, "handshake_timeout_seconds": 1.0, **overrides.pop("forward_proxy", {})}
        self.settings = gateway_settings(upstream, data_dir=str(data_dir), forward_proxy=proxy, **overrides)
        self.sock, self.proxy_sock = _bound(), _bound()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.proxy = f"http://127.0.0.1:{self.proxy_sock.getsockname()[1]}"
        self.proxy_port = self.proxy_sock.getsockname()[1]
        options = {**uvicorn_options(self.settings.server), "loop": loop, "timeout_graceful_shutdown": 2}
        config = uvicorn.Config(create_app(self.settings), **options)
        self.server = DrainingServer(config, (self.settings, self.proxy_sock))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.ca_file = data_dir / "forward-proxy" / CA_FILE

    def __enter__(self) -> ProxyGateway:
        self.thread.start()
        wait_until(lambda: self.server.started, "the gateway", alive=self.thread.is_alive)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
        self.proxy_sock.close()

    def client(self, verify: ssl.SSLContext | None = None) -> httpx.Client:
        context = verify or ssl.create_default_context(cafile=str(self.ca_file))
        return httpx.Client(proxy=self.proxy, verify=context, timeout=30)


def _bound() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@pytest.fixture
def proxied(emulator_server: AsgiServer, tmp_path: Path) -> Iterator[ProxyGateway]:
    with ProxyGateway(emulator_server.url, tmp_path / "data", server={"max_connections": 20}) as gateway:
        yield gateway


def test_the_openai_sdk_reaches_the_deployments_through_https_proxy(proxied: ProxyGateway) -> None:
    with proxied.client() as http:
        client = OpenAI(api_key=EMULATOR_KEY, http_client=http, max_retries=0)  # base_url: api.openai.com
        assert str(client.base_url) == "https://api.openai.com/v1/"
        answer = client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.headers["x-gateway-deployment"] == "chat-4o"  # the gateway's routing, not OpenAI's
        assert answer.parse().choices[0].message.content
        chunks = list(
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True)
        )
        assert chunks and client.embeddings.create(model="text-embedding-3-small", input="x").data
        assert [m.id for m in client.models.list()]
        unknown = http.post("https://api.openai.com/v1/chat/completions", json={"model": "nope", "messages": []})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"


def test_the_ca_is_made_once_with_private_files(proxied: ProxyGateway, tmp_path: Path) -> None:
    folder = tmp_path / "data" / "forward-proxy"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / CA_KEY_FILE).stat().st_mode) == 0o600
    assert sorted(p.name for p in folder.iterdir()) == sorted([CA_FILE, CA_KEY_FILE])  # leaves never stay on disk
    again = CertificateAuthority.open(folder)
    assert again.certificate == CertificateAuthority.open(folder).certificate
    assert again.cert_path.read_bytes() == proxied.ca_file.read_bytes()


def test_a_client_that_does_not_trust_the_ca_fails_tls(proxied: ProxyGateway) -> None:
    with (
        proxied.client(ssl.create_default_context()) as http,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY"),
    ):
        http.get("https://api.openai.com/v1/models")


def raw(port: int, data: bytes, *, wait: float = 5.0) -> bytes:
    """Send `data` on a fresh connection; everything the server says until it closes (or `wait` passes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return answer


@pytest.mark.parametrize(
    "target",
    [
        b"127.0.0.1:22",
        b"localhost:443",
        b"metadata.google.internal:443",
        b"api.openai.com:80",
        b"api.openai.com",
        b"api.openai.com.evil.example:443",
        b"[::1]:443",
        b"169.254.169.254:443",
    ],
)
def test_other_connect_targets_are_refused(proxied: ProxyGateway, target: bytes) -> None:
    answer = raw(proxied.proxy_port, b"CONNECT " + target + b" HTTP/1.1\r\nHost: " + target + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 403 ") and b'"permission_denied"' in answer


def test_other_methods_and_garbage_are_refused(proxied: ProxyGateway) -> None:
    plain = raw(proxied.proxy_port, b"GET http://api.openai.com/v1/models HTTP/1.1\r\nHost: api.openai.com\r\n\r\n")
    assert plain.startswith(b"HTTP/1.1 405 ") and b"allow: CONNECT" in plain
    assert raw(proxied.proxy_port, b"\x16\x03\x01\x02\x00garbage\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    early = b"CONNECT api.openai.com:443 HTTP/1.1\r\n\r\n\x16\x03\x01"  # TLS before the 200
    assert raw(proxied.proxy_port, early).startswith(b"HTTP/1.1 400 ")


def test_a_connect_head_flood_and_a_stalled_head_are_bounded(emulator_server: AsgiServer, tmp_path: Path) -> None:
    server = {"header_timeout_seconds": 0.5, "max_header_bytes": 4096}
    with ProxyGateway(emulator_server.url, tmp_path, server=server) as gateway:
        flood = raw(gateway.proxy_port, b"CONNECT api.openai.com:443 HTTP/1.1\r\n" + b"X-A: " + b"a" * 10000)
        assert flood.startswith(b"HTTP/1.1 431 ")
        started = time.monotonic()
        assert raw(gateway.proxy_port, b"CONNECT api.op").startswith(b"HTTP/1.1 408 ")
        assert raw(gateway.proxy_port, b"") == b""  # an idle connection is closed, unanswered
        assert time.monotonic() - started < 4


def test_a_tunnel_that_never_starts_tls_is_closed(proxied: ProxyGateway) -> None:
    started = time.monotonic()
    answer = raw(proxied.proxy_port, b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n")
    assert answer == b"HTTP/1.1 200 Connection Established\r\n\r\n"
    assert time.monotonic() - started < 4  # forward_proxy.handshake_timeout_seconds: 1


def tunnel(port: int, ca_file: Path) -> ssl.SSLSocket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n")
    assert sock.recv(1024).startswith(b"HTTP/1.1 200 ")
    context = ssl.create_default_context(cafile=str(ca_file))
    return context.wrap_socket(sock, server_hostname="api.openai.com")


def test_a_header_flood_inside_the_tunnel_meets_the_main_ports_limits(proxied: ProxyGateway) -> None:
    with tunnel(proxied.proxy_port, proxied.ca_file) as tls:
        tls.sendall(
            b"GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\n"
            + b"".join(b"X-%d: 1\r\n" % i for i in range(300))
            + b"\r\n"
        )
        answer = tls.recv(65536)
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_many_tunnels_are_bounded_by_max_connections(proxied: ProxyGateway) -> None:
    held = [tunnel(proxied.proxy_port, proxied.ca_file) for _ in range(20)]  # server.max_connections: 20
    try:
        refused = raw(proxied.proxy_port, b"CONNECT api.openai.com:443 HTTP/1.1\r\n\r\n")
        assert refused.startswith(b"HTTP/1.1 503 ") and b"retry-after" in refused
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    with proxied.client() as http:
        assert (
            http.get(
                "https://api.openai.com/v1/models", headers={"authorization": f"Bearer {EMULATOR_KEY}"}
            ).status_code
            == 200
        )


def test_keys_mode_applies_inside_the_tunnel(emulator_server: AsgiServer, tmp_path: Path) -> None:
    deployments = [{"model": "gpt-4o", "endpoint": emulator_server.url, "api_key": EMULATOR_KEY}]
    with (
        ProxyGateway(
            emulator_server.url, tmp_path, auth="keys", deployments=deployments, api_base="/openai"
        ) as gateway,
        gateway.client() as http,
    ):
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
        refused = http.post("https://api.openai.com/v1/chat/completions", json=body)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
        with_emulator_key = http.post(
            "https://api.openai.com/v1/chat/completions", json=body, headers={"authorization": f"Bearer {EMULATOR_KEY}"}
        )
        assert with_emulator_key.status_code == 401  # only gateway keys count in keys mode


def test_an_unchanged_program_with_https_proxy_and_ssl_cert_file(proxied: ProxyGateway, tmp_path: Path) -> None:
    """What a user does: no code change, only the environment (the SDK's default httpx client reads both)."""
    program = (
        "from openai import OpenAI\n"
        "answer = OpenAI(max_retries=0).chat.completions.create("
        "model='gpt-4o', messages=[{'role': 'user', 'content': 'hi'}])\n"
        "print('answered:', bool(answer.choices[0].message.content))\n"
    )
    env = {
        **child_environ(),
        "OPENAI_API_KEY": EMULATOR_KEY,
        "https_proxy": proxied.proxy,
        "SSL_CERT_FILE": str(proxied.ca_file),
        "NO_PROXY": "",
        "no_proxy": "",
    }
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "answered: True"


def test_under_uvloop_as_served(emulator_server: AsgiServer, tmp_path: Path) -> None:
    with ProxyGateway(emulator_server.url, tmp_path, loop="uvloop") as gateway, gateway.client() as http:
        client = OpenAI(api_key=EMULATOR_KEY, http_client=http, max_retries=0)
        assert client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}]).choices
        assert raw(gateway.proxy_port, b"CONNECT 127.0.0.1:22 HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 403 ")
