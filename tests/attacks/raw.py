"""Raw HTTP/1.1 over a loopback socket, for requests a client library would normalise or refuse to send.

status, headers, body = raw_request(port, b"POST /openai/deployments/gpt-4o/../x/chat/completions HTTP/1.1", ...)
"""

from __future__ import annotations

import socket


def raw_request(
    port: int, request_line: bytes, headers: dict[str, str] | None = None, body: bytes = b"", timeout: float = 30
) -> tuple[int, dict[str, str], bytes]:
    """Send exactly these bytes (Host and Content-Length added) and read one response."""
    lines = [request_line, b"Host: 127.0.0.1", b"Connection: close", f"Content-Length: {len(body)}".encode()]
    lines += [f"{k}: {v}".encode() for k, v in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), parsed, rest
