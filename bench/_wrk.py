"""wrk as the load generator: one POST shape, results read back as JSON from a Lua `done` hook.

    script = write_script(workdir / "chat.lua", "/v1/chat/completions", body)
    result = run_wrk(port, script, connections=16, duration=5, core=0)
    result.rps, result.p50_ms, result.p99_ms

wrk runs one thread (`-t1`) on the core given, closed loop: each connection sends its next request as soon as
the previous answer is complete, so the request rate is the saturation throughput for that many connections.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from _nginx import require
from _procs import LOOPBACK

_MARK = "WRK_JSON "

_LUA = """
wrk.method = "POST"
wrk.path = %(path)s
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
wrk.headers["api-key"] = %(api_key)s

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(mark)s{"requests":%%d,"duration_us":%%d,"bytes":%%d,"errors":%%d,"non2xx":%%d,' ..
    '"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"mean_us":%%f,"max_us":%%d}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
"""


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal for ASCII text


def write_script(path: Path, url_path: str, body: str, api_key: str = "client-key-not-used") -> Path:
    """A wrk Lua script that POSTs `body` as JSON to `url_path` (with `api_key`: a gateway key where the gateway
    checks keys) and prints its results as JSON."""
    values = {"path": _lua_string(url_path), "body": _lua_string(body), "api_key": _lua_string(api_key)}
    path.write_text(_LUA % {**values, "mark": _MARK})
    return path


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int
    non2xx: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def failed(self) -> int:
        return self.errors + self.non2xx


class WrkRun:
    """One wrk run in the background, so the caller can sample other counters while it runs.

    with WrkRun.start(port, script, connections=16, duration=5, core=0) as run:
        ...                   # e.g. read nginx's stub_status mid-run
        result = run.wait()
    """

    def __init__(self, proc: subprocess.Popen[str], duration: float) -> None:
        self._proc = proc
        self._duration = duration

    @classmethod
    def start(cls, port: int, script: Path, *, connections: int, duration: float, core: int) -> WrkRun:
        """Start wrk against loopback `port` for `duration` whole seconds; 5 s timeout per request."""
        argv = [
            "taskset",
            "-c",
            str(core),
            require("wrk"),
            "-t1",
            f"-c{connections}",
            f"-d{duration:g}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            f"http://{LOOPBACK}:{port}",
        ]
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        return cls(proc, duration)

    def __enter__(self) -> WrkRun:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()

    def kill(self) -> None:
        """Stop wrk if it still runs (the benchmark failed or was interrupted mid-run)."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def wait(self) -> WrkResult:
        try:
            stdout, stderr = self._proc.communicate(timeout=self._duration + 30)
        finally:
            self.kill()
        for line in stdout.splitlines():
            if line.startswith(_MARK):
                data = json.loads(line[len(_MARK) :])
                return WrkResult(
                    requests=data["requests"],
                    seconds=data["duration_us"] / 1e6,
                    errors=data["errors"],
                    non2xx=data["non2xx"],
                    p50_ms=data["p50_us"] / 1000,
                    p90_ms=data["p90_us"] / 1000,
                    p99_ms=data["p99_us"] / 1000,
                    mean_ms=data["mean_us"] / 1000,
                    max_ms=data["max_us"] / 1000,
                )
        status = self._proc.returncode
        raise RuntimeError(f"wrk gave no result (status {status}): {stdout[-500:]}{stderr[-500:]}")


def run_wrk(port: int, script: Path, *, connections: int, duration: float, core: int) -> WrkResult:
    """Run wrk in the foreground; see `WrkRun.start`."""
    with WrkRun.start(port, script, connections=connections, duration=duration, core=core) as run:
        return run.wait()
