"""A near-zero-cost upstream: nginx answering every call with a fixed Azure-like chat completion.

    upstream = NginxUpstream.write(workdir, port)
    proc = procs.start(upstream.argv(), core=0)
    before = upstream.accepted()         # connections nginx accepted so far (requests(): requests answered)
    ...
    new_connections = upstream.accepted() - before - 1   # minus the stub_status query itself

`/prefix/...` answers JSON (non-streaming deployment), `/stream/...` a fixed `text/event-stream` body
(streaming deployment): nginx cannot easily tell a streaming request by its body, so each kind has its own
path.
"""

from __future__ import annotations

import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from _procs import LOOPBACK

INSTALL_HINT = "apt-get install -y wrk nginx-light"

COMPLETION = (
    '{"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},'
    '"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},'
    '"violence":{"filtered":false,"severity":"safe"}},"finish_reason":"stop","index":0,"logprobs":null,'
    '"message":{"content":"Hello! How can I assist you today?","refusal":null,"role":"assistant"}}],'
    '"created":1732190000,"id":"chatcmpl-AVx0bench0000000000000000000","model":"gpt-4o-2024-08-06",'
    '"object":"chat.completion","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{'
    '"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},'
    '"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}],'
    '"system_fingerprint":"fp_04751d0b65","usage":{"completion_tokens":9,"prompt_tokens":9,"total_tokens":18}}'
)

_CHUNK = (
    '{"choices":[{"content_filter_results":{},"delta":{"content":"%s"},"finish_reason":null,"index":0,'
    '"logprobs":null}],"created":1732190000,"id":"chatcmpl-AVx0bench0000000000000000000",'
    '"model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","system_fingerprint":"fp_04751d0b65"}'
)
STREAM_EVENTS = [
    '{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,'
    '"content_filter_results":{}}]}',
    _CHUNK.replace('"content":"%s"', '"content":"","refusal":null,"role":"assistant"'),
    *(_CHUNK % word for word in ("Hello", "!", " How", " can", " I", " assist", " you", " today", "?")),
    _CHUNK.replace('{"content":"%s"}', "{}").replace('"finish_reason":null', '"finish_reason":"stop"'),
]
STREAM_BODY = "".join(f"data: {event}\n\n" for event in STREAM_EVENTS) + "data: [DONE]\n\n"

# Headers Azure sends with every answer; the gateway relays them, so they belong in its per-request work.
_AZURE_HEADERS = """
            add_header apim-request-id 3f1e2d4c-5b6a-4789-8a9b-0c1d2e3f4a5b always;
            add_header x-request-id 9a8b7c6d-5e4f-4321-9876-543210fedcba always;
            add_header x-ms-region "Sweden Central" always;
            add_header x-ratelimit-remaining-requests 9999 always;
            add_header x-ratelimit-remaining-tokens 999000 always;
            add_header x-ms-deployment-name dep1 always;"""


def _quoted(text: str) -> str:
    # nginx's single-quoted strings understand \n and \'; the bodies hold neither quote nor backslash.
    assert "'" not in text and "\\" not in text
    return "'" + text.replace("\n", "\\n") + "'"


def require(binary: str) -> str:
    """The path of `binary`, or exit with the command that installs it."""
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
    if path is None:
        raise SystemExit(f"{binary} is not installed; install it with: {INSTALL_HINT}")
    return path


@dataclass(frozen=True)
class NginxUpstream:
    port: int
    config: Path
    prefix: Path

    @classmethod
    def write(cls, workdir: Path, port: int) -> NginxUpstream:
        prefix = workdir / "nginx"
        prefix.mkdir(parents=True, exist_ok=True)
        config = prefix / "nginx.conf"
        config.write_text(f"""
worker_processes 1;
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server_tokens off;
    server {{
        listen {LOOPBACK}:{port} reuseport backlog=4096;
        location = /nginx_status {{ stub_status; }}
        location /stream/ {{
            default_type text/event-stream;{_AZURE_HEADERS}
            return 200 {_quoted(STREAM_BODY)};
        }}
        location / {{
            default_type application/json;{_AZURE_HEADERS}
            return 200 {_quoted(COMPLETION)};
        }}
    }}
}}
""")
        return cls(port, config, prefix)

    def argv(self) -> list[str]:
        return [require("nginx"), "-p", str(self.prefix), "-c", str(self.config)]

    def _counters(self) -> list[int]:
        url = f"http://{LOOPBACK}:{self.port}/nginx_status"
        with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
            lines = response.read().decode().splitlines()
        # "Active connections: N" / "server accepts handled requests" / " A H R" / "Reading: ..."
        return [int(field) for field in lines[2].split()]

    def accepted(self) -> int:
        """Connections nginx has accepted since it started (stub_status), this query's own included."""
        return self._counters()[0]

    def requests(self) -> int:
        """Requests nginx has answered since it started (stub_status), this query included."""
        return self._counters()[2]
