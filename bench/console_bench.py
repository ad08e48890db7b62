"""The console on a big database: each page's server time, and the proxy's throughput while the console is used.

    .venv/bin/python bench/console_bench.py                        # 10,000 keys, 1,000,000 ledger rows, SQLite
    .venv/bin/python bench/console_bench.py --postgres postgresql://127.0.0.1/test   # in a database of its own
    .venv/bin/python bench/console_bench.py --keys 1000 --rows 100000 --loads 10 --duration 3 --runs 1  # smoke

Seeds the database (bench/_console_seed.py: events, `--keys` keys, a `--rows` ledger with its rollups), then
starts nginx as the upstream (core 0) and the real gateway (`python -m aoai_gateway serve`, core 1; `auth: keys`,
the console on with a master key, its access log on), signs in with the master key as a browser would (CSRF
cookie and token, then the session cookie), and measures, all in one run:

- **page time**: every console page (`PAGES`) loaded `--loads` times after two warm-up loads, one at a time on
  a kept-alive connection; p50 and p95 of the loopback round trip (request written to last byte read: the
  server's time plus a loopback hop), against the 200 ms target;
- **proxy throughput**: wrk (`-t1 -c--connections`, core 0) on `POST /v1/chat/completions` with a gateway key,
  alone and while a browser-like client loads console pages (`--page-rate` a second, cycling through the pages;
  `--load-pages heavy`: only the three heaviest usage reports, the worst case), `--runs` pairs interleaved
  (alone, with; reversed every other run), medians and their ratio; the page times measured under that load are
  reported too.

Both ways of rendering the read-only pages are measured in the same run (`--modes`): `console.process: true`
(the default: a nice-19 child of the gateway renders them; the gateway relays) and `false` (the gateway's own
process renders them). The child inherits the gateway's core, so both compete for the same CPU; the gateway's
CPU is split into its own process and the page process.

The report is printed and saved as `bench/results/console-bench-<timestamp>.md`. Needs `wrk` and `nginx`
(`apt-get install -y wrk nginx-light`) and two CPUs; a full run takes about 3 to 5 minutes on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import http.client
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import yaml  # noqa: E402
from _console_seed import Seeded, seed  # noqa: E402
from _gateway import API_VERSION, MODEL, chat_body  # noqa: E402
from _nginx import NginxUpstream  # noqa: E402
from _procs import LOOPBACK, ProcessGroup, cpu_ns, free_port, own_cpu_ns, wait_for_port  # noqa: E402
from _report import machine_info  # noqa: E402
from _results import percentile  # noqa: E402
from _wrk import WrkResult, run_wrk, write_script  # noqa: E402

MASTER = "bench-master-key-" + uuid.uuid4().hex
TARGET_MS = 200.0
CORES = {"upstream": 0, "wrk": 0, "gateway": 1}
MODES = {"page-process": True, "in-process": False}  # --modes: console.process
HEAVY = ("usage by key, all time", "usage by key, since 7d", "usage by key, CSV")  # --load-pages heavy
Page = tuple[str, str, dict[str, str] | None]  # label, path, form (a POST with the CSRF token)


def pages(seeded: Seeded, keys: int) -> list[Page]:
    """(label, path, form) of every console page measured; a form makes it a POST (with the CSRF token)."""
    event = f"/console/admin/events/{seeded.event_id}"
    last = max(0, (keys // 50) * 50 - 50)
    return [
        ("admin home (events)", "/console/admin", None),
        ("keys, first page", "/console/admin/keys", None),
        ("keys, last page", f"/console/admin/keys?offset={last}", None),
        ("event, attendees page 1", event, None),
        ("event, attendees deep page", f"{event}?offset={max(0, keys // 5 - 50)}", None),
        ("event, attendee search", f"{event}?q=attendee-0123", None),
        ("event live", f"{event}/live", None),
        ("event live.json", f"{event}/live.json", None),
        *((f"usage by {by}, all time", f"/console/admin/usage?by={by}", None) for by in ("model", "day", "deployment")),
        ("usage by key, all time", "/console/admin/usage?by=key", None),
        ("usage by event, all time", "/console/admin/usage?by=event", None),
        ("usage by key, since 7d", "/console/admin/usage?by=key&since=7d", None),
        ("usage by key, CSV", "/console/admin/usage.csv?by=key", None),
        ("deployments", "/console/admin/deployments", None),
        ("attendee landing", f"/console/events/{seeded.event_id}", None),
        ("attendee's own usage", "/console/usage", {"key": seeded.attendee_secret}),
        ("playground", "/console/playground", None),
    ]


class Browser:
    """A signed-in admin's browser: one kept-alive connection, the CSRF and session cookies."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection(LOOPBACK, port, timeout=60)
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, bytes, float]:
        headers = {"cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urlencode({"csrf": self.csrf, **form}).encode()
            headers["content-type"] = "application/x-www-form-urlencoded"
        try:
            return self._send(method, path, body, headers)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # The server closed the kept-alive connection while the client was idle (its keep-alive timeout,
            # say during a wrk run): open a new one, as a browser does, and time that request afresh.
            self.connection.close()
            return self._send(method, path, body, headers)

    def _send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes, float]:
        started = time.perf_counter()
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        took = time.perf_counter() - started
        for header in response.headers.get_all("set-cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        token = re.search(rb'name="csrf" value="([^"]+)"', data)
        if token:
            self.csrf = token[1].decode()
        return response.status, data, took

    def sign_in(self) -> None:
        self.request("GET", "/console/sign-in")
        status, _, _ = self.request("POST", "/console/sign-in", {"master_key": MASTER})
        if status != 303 or "aoai_console_session" not in self.cookies:
            raise RuntimeError(f"sign-in failed: {status}")
        self.request("GET", "/console/admin")  # a CSRF token for the posts

    def load(self, path: str, form: dict[str, str] | None) -> float:
        status, data, took = self.request("POST" if form is not None else "GET", path, form)
        if status != 200:
            raise RuntimeError(f"{path}: {status} {data[:300]!r}")
        return took * 1000


def measure_pages(browser: Browser, shown: list[Page], loads: int) -> list[str]:
    lines = ["| page | p50 ms | p95 ms | max ms | under 200 ms (p95) |", "| --- | --: | --: | --: | --- |"]
    print("\n".join(lines), flush=True)
    for label, path, form in shown:
        for _ in range(2):
            browser.load(path, form)
        times = [browser.load(path, form) for _ in range(loads)]
        p95 = percentile(times, 95)
        verdict = "yes" if p95 < TARGET_MS else "**no**"
        lines.append(f"| {label} | {statistics.median(times):.1f} | {p95:.1f} | {max(times):.1f} | {verdict} |")
        print(lines[-1], flush=True)
    return lines


class PageLoader(threading.Thread):
    """Console pages at `rate` a second (cycling), until stopped: an organiser or two clicking around."""

    def __init__(self, browser: Browser, shown: list[Page], rate: float) -> None:
        super().__init__(daemon=True)
        self.browser, self.shown, self.rate = browser, shown, rate
        self.stop = threading.Event()
        self.times: list[float] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        index = 0
        next_at = time.monotonic()
        try:
            while not self.stop.is_set():
                _, path, form = self.shown[index % len(self.shown)]
                self.times.append(self.browser.load(path, form))
                index += 1
                next_at += 1 / self.rate
                self.stop.wait(max(0.0, next_at - time.monotonic()))
        except BaseException as exc:  # reported by the main thread
            self.error = exc


def measure_throughput(
    args: argparse.Namespace,
    port: int,
    pid: int,
    script: Path,
    browser: Browser,
    shown: list[Page],
) -> list[str]:
    alone: list[WrkResult] = []
    busy: list[WrkResult] = []
    page_times: list[float] = []
    # The gateway's CPU time per run (every thread of it): per proxied request, and how busy its core was. On a
    # shared machine req/s moves with whatever else runs; CPU per request much less.
    cpu: dict[str, list[tuple[float, float]]] = {"alone": [], "console": []}
    console_cpu: list[tuple[float, int]] = []  # (CPU seconds, proxied requests) of each run with the console
    child_cpu = 0.0  # of those seconds, the page process's (console.process)
    for run in range(args.runs):
        for mode in ("alone", "console") if run % 2 == 0 else ("console", "alone"):
            loader = PageLoader(browser, shown, args.page_rate) if mode == "console" else None
            if loader:
                loader.start()
            before, own_before = cpu_ns(pid), own_cpu_ns(pid)
            result = run_wrk(port, script, connections=args.connections, duration=args.duration, core=CORES["wrk"])
            used = (cpu_ns(pid) - before) / 1e9
            if mode == "console":
                child_cpu += used - (own_cpu_ns(pid) - own_before) / 1e9
            cpu[mode].append((used / max(result.requests, 1) * 1e6, used / result.seconds if result.seconds else 0))
            if mode == "console":
                console_cpu.append((used, result.requests))
            if loader:
                loader.stop.set()
                loader.join()
                if loader.error:
                    raise loader.error
                page_times += loader.times
            (busy if loader else alone).append(result)
            failed = f", {result.failed} failed" if result.failed else ""
            us, busy_share = cpu[mode][-1]
            print(
                f"run {run + 1} {mode}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
                f"gateway CPU {us:.0f} µs/req, core busy {busy_share:.0%}{failed}",
                flush=True,
            )
    rps_alone = statistics.median(r.rps for r in alone)
    rps_busy = statistics.median(r.rps for r in busy)
    pages_per_s = len(page_times) / (args.runs * args.duration)
    # What the pages cost the gateway: its CPU in the console runs beyond what their proxied requests cost alone.
    alone_us = statistics.median(u for u, _ in cpu["alone"])
    extra = sum(used for used, _ in console_cpu) - alone_us / 1e6 * sum(n for _, n in console_cpu)
    page_cpu_ms = extra / max(len(page_times), 1) * 1000
    child_ms = child_cpu / max(len(page_times), 1) * 1000
    return [
        f"wrk -t1 -c{args.connections}, {args.duration:g} s a run, {args.runs} runs each, interleaved; console load "
        f"{args.page_rate:g} pages/s asked ({args.load_pages} pages in turn), {pages_per_s:.1f} pages/s done",
        "",
        "| | req/s (median) | each run | p50 ms | p99 ms | gateway CPU µs/req | gateway core busy | failed |",
        "| --- | --: | --- | --: | --: | --: | --: | --: |",
        *(
            f"| {label} | {statistics.median(r.rps for r in results):,.0f} | "
            f"{', '.join(f'{r.rps:,.0f}' for r in results)} | "
            f"{statistics.median(r.p50_ms for r in results):.2f} | {statistics.median(r.p99_ms for r in results):.2f} "
            f"| {statistics.median(u for u, _ in cpu[mode]):.0f} | {statistics.median(b for _, b in cpu[mode]):.0%} "
            f"| {sum(r.failed for r in results)} |"
            for label, mode, results in (
                ("proxy alone", "alone", alone),
                ("proxy with console in use", "console", busy),
            )
        ),
        "",
        f"**throughput with the console in use / alone: {rps_busy / rps_alone:.3f}**; gateway CPU per proxied "
        f"request (the console's pages included) with / without: "
        f"{statistics.median(u for u, _ in cpu['console']) / statistics.median(u for u, _ in cpu['alone']):.3f}",
        f"the console's pages cost the gateway about {page_cpu_ms:.1f} ms of CPU each (its CPU in the console runs "
        f"beyond what their proxied requests cost alone), of which {child_ms:.1f} ms in the page process",
        f"console pages during the load: p50 {statistics.median(page_times):.1f} ms, "
        f"p95 {percentile(page_times, 95):.1f} ms, max {max(page_times):.1f} ms ({len(page_times)} loads)",
    ]


def gateway_config(url: str, workdir: Path, upstream: str, page_process: bool) -> dict[str, object]:
    return {
        "auth": "keys",
        "database_url": url,
        "data_dir": str(workdir),
        "admin": {"master_key": MASTER},
        "console": {"process": page_process},
        "logging": {"access_log": True},
        "deployments": [
            {"model": MODEL, "deployment": "dep1", "endpoint": upstream, "api_key": "k", "api_version": API_VERSION}
        ],
    }


async def _seed(url: str, args: argparse.Namespace) -> Seeded:
    return await seed(url, keys=args.keys, rows=args.rows)


def run(args: argparse.Namespace, url: str, label: str, workdir: Path) -> list[str]:
    # This script (the seeding, the console's client) shares core 0 with wrk and nginx, as gateway_bench's does:
    # the gateway's core is its own.
    os.sched_setaffinity(0, {CORES["wrk"]})
    started = time.perf_counter()
    seeded = asyncio.run(_seed(url, args))
    seconds = time.perf_counter() - started
    gc.collect()
    lines = [
        f"## {label}: {seeded.keys:,} keys, {seeded.rows:,} ledger rows (seeded in {seconds:.0f} s: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in seeded.timings.items())
        + ")",
    ]
    print(lines[0], flush=True)
    for mode in args.modes.split(","):
        page_process = MODES[mode]
        with ProcessGroup() as procs:
            nginx_port = free_port()
            nginx = NginxUpstream.write(workdir, nginx_port)
            wait_for_port(nginx_port, procs.start(nginx.argv(), core=CORES["upstream"]))
            config = workdir / "gateway.yaml"
            upstream = f"http://{LOOPBACK}:{nginx_port}/prefix"
            config.write_text(yaml.safe_dump(gateway_config(url, workdir, upstream, page_process)))
            port = free_port()
            argv = [sys.executable, "-m", "aoai_gateway", "serve", "--config", str(config), "--host", LOOPBACK]
            with (workdir / f"gateway-{mode}.log").open("wb") as log:
                gateway = procs.start([*argv, "--port", str(port)], core=CORES["gateway"], stderr=log)
            wait_for_port(port, gateway, 60)
            browser = Browser(port)
            browser.sign_in()
            shown = pages(seeded, args.keys)
            head = [
                "",
                f"### console.process: {str(page_process).lower()} ({mode})",
                "",
                f"Page time ({args.loads} loads each after 2 warm-ups; loopback round trip):",
                "",
            ]
            print("\n".join(head), flush=True)
            lines += head
            lines += measure_pages(browser, shown, args.loads)
            lines += ["", "Proxy throughput, alone and with the console in use:", ""]
            body = chat_body(MODEL, False)
            script = write_script(workdir / "chat.lua", "/v1/chat/completions", body, seeded.load_secret)
            loaded = [page for page in shown if args.load_pages == "all" or page[0] in HEAVY]
            lines += measure_throughput(args, port, gateway.pid, script, browser, loaded)
            print("\n".join(lines[-4:]), flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=10_000, help="keys to seed (default 10000)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="usage ledger rows to seed (default 1000000)")
    parser.add_argument("--loads", type=int, default=20, help="timed loads of each page (default 20)")
    parser.add_argument("--duration", type=float, default=10, help="seconds of each wrk run (default 10)")
    parser.add_argument("--runs", type=int, default=3, help="wrk runs alone and with the console (default 3 each)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--page-rate", type=float, default=4, help="console pages a second under load (default 4)")
    parser.add_argument(
        "--load-pages",
        choices=("all", "heavy"),
        default="all",
        help="pages loaded under wrk: all of them in turn, or the three heaviest usage reports (default all)",
    )
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL instead of SQLite (a database made and dropped)")
    parser.add_argument(
        "--pin-postgres",
        type=int,
        metavar="CORE",
        help="with --postgres on this machine: run its processes on CORE only while measuring, as a database on "
        "its own host would (default: where the kernel puts them)",
    )
    parser.add_argument(
        "--modes",
        default="page-process,in-process",
        help="console.process settings measured, in order (default page-process,in-process)",
    )
    args = parser.parse_args()
    if unknown := [m for m in args.modes.split(",") if m not in MODES]:
        parser.error(f"--modes: unknown {', '.join(unknown)}; known: {', '.join(MODES)}")
    started_at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="aoai-console-bench-") as tmp:
        workdir = Path(tmp)
        if args.postgres:
            lines = _postgres(args, workdir)
        else:
            lines = run(args, f"sqlite:///{workdir}/gateway.db", "SQLite", workdir)
    machine = machine_info()
    head = [f"# Console benchmark ({started_at})", "", *(f"- {k}: {v}" for k, v in machine.items()), ""]
    report = "\n".join([*head, *lines, "", f"total {time.perf_counter() - started:.0f} s"])
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"console-bench-{time.strftime('%Y%m%d-%H%M%S')}.md"
    path.write_text(report + "\n")
    print(f"total {time.perf_counter() - started:.0f} s; report {path}", flush=True)


def _postgres(args: argparse.Namespace, workdir: Path) -> list[str]:
    import asyncpg  # type: ignore[import-untyped]

    name = f"aoai_console_bench_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(args.postgres)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f"CREATE DATABASE {name}"))
    try:
        with pinned_postgres(args.pin_postgres):
            label = "PostgreSQL" + (f" (its processes on core {args.pin_postgres})" if args.pin_postgres else "")
            return run(args, args.postgres.rsplit("/", 1)[0] + f"/{name}", label, workdir)
    finally:
        asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@contextlib.contextmanager
def pinned_postgres(core: int | None) -> Iterator[None]:
    """With `core`: every process named postgres (the server on this machine; new backends inherit the
    postmaster's CPUs) runs on that core only, as a database on its own host would leave the gateway's core
    alone; the CPUs each had are given back after. Needs the right to change their affinity (root, or their user)."""
    if core is None:
        yield
        return
    before: dict[int, set[int]] = {}
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError):
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "postgres":
                pid = int(entry.name)
                before[pid] = os.sched_getaffinity(pid)
                os.sched_setaffinity(pid, {core})
    if not before:
        raise SystemExit("--pin-postgres: no process named postgres runs on this machine")
    try:
        yield
    finally:
        for pid, cpus in before.items():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(pid, cpus)


if __name__ == "__main__":
    main()
