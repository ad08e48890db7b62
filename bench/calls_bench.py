"""Call analytics benchmark: calls per hour per core, and how much of a call's time is spent outside model calls.

    .venv/bin/python bench/calls_bench.py              # the 12 calls-dev recordings, about 2.5 minutes
    .venv/bin/python bench/calls_bench.py --quick      # 4 of them, about 45 s
    .venv/bin/python bench/calls_bench.py --runs 3     # each configuration 3 times (alternating), medians

The recordings are calls-dev's 12 scripted sales calls (80-95 s each), voiced with espeak-ng by its
generate_audio.py (made once into bench/results/calls-audio). Transcription is local Whisper (a `provider: local`
deployment, the bundled tiny.en); extraction goes to `aoai-gateway emulator` on a loopback port (started once,
no added latency: it answers a small instance of the schema). Both configurations run the same model calls,
in-process through the gateway (`ModelClient.in_process`), with `calls.concurrency` at its default (4) and the
speech pool sized by itself; each run is a process of its own, which loads the model, transcribes a 5 s clip
and makes one extraction (a server warms once) before the clock starts:

- pipeline: `Runner(pipeline, 4).run_batch(...)` over the recordings, the pipeline from `open_pipeline` (cli.py)
  with a fresh SQLite database: reading, hashing, leases, checkpoints, documents, the store;
- bare: for each recording `ModelClient.transcribe` then `Extractor.extract`, 4 at a time, nothing else: the
  floor any pipeline could reach with these models.

Reported per configuration (medians over --runs): wall time, calls/hour, calls/hour per core (the cores this
process may use), audio minutes per hour, real-time factor (wall / audio), and where the time went:

- outside model calls: `Summary.outside_share`, 1 - model-call time / call time, summed over calls. A call's
  time includes waiting for the one speech worker, so with 4 calls in flight this dilutes the pipeline's own
  work about 4x; hence also outside ms/call, and outside / wall (the pipeline's own work summed over calls,
  over the wall time: its share if none of it overlapped the models);
- no model call / no transcription in flight: from the start and end of every model call, the share of the
  wall time when the models (the speech worker, the bottleneck) had nothing to do.

The pipeline/bare throughput ratio is the direct measure of what the pipeline costs. The report is printed and
saved as bench/results/calls-bench-<UTC timestamp>.md (+ .json with every sample and model-call span).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

from _procs import ProcessGroup, cpu_ns, free_port, wait_for_port  # noqa: E402

from aoai_gateway.calls.cli import open_pipeline  # noqa: E402
from aoai_gateway.calls.extract import Extractor  # noqa: E402
from aoai_gateway.calls.models import ModelClient  # noqa: E402
from aoai_gateway.calls.runner import Runner, Summary, Work  # noqa: E402
from aoai_gateway.calls.schema import ExtractionSchema  # noqa: E402
from aoai_gateway.calls.sources import LocalSource  # noqa: E402
from aoai_gateway.config import Settings  # noqa: E402
from aoai_gateway.config.calls import CallsSettings  # noqa: E402

CALLS_DEV = ROOT.parent / "shared" / "calls-dev"
RESULTS = ROOT / "bench" / "results"
CONFIGS = ("pipeline", "bare")


class ModelSpans:
    """Wraps a ModelClient's two calls on the instance and notes when each ran: (kind, start, end)."""

    def __init__(self, models: ModelClient) -> None:
        self.spans: list[tuple[str, float, float]] = []
        for name in ("transcribe", "chat"):
            setattr(models, name, self._timed(name, getattr(models, name)))

    def _timed(self, name: str, call: Any) -> Any:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await call(*args, **kwargs)
            finally:
                self.spans.append((name, started, time.perf_counter()))

        return timed

    def idle_share(self, start: float, end: float, kind: str | None = None) -> float:
        """Share of [start, end] during which no call (of `kind`) was in flight."""
        covered, reach = 0.0, start
        for _, begin, finish in sorted((s for s in self.spans if kind in (None, s[0])), key=lambda s: s[1]):
            begin, finish = max(begin, reach), min(finish, end)
            if finish > begin:
                covered, reach = covered + finish - begin, finish
        return 1 - covered / (end - start)


def settings_for(emulator_url: str, tmp: str) -> Settings:
    return Settings.model_validate(
        {
            "data_dir": tmp,
            "deployments": [
                {"model": "whisper-local", "provider": "local"},
                {"model": "gpt-4o", "deployment": "gpt-4o", "endpoint": emulator_url, "api_key": "bench-key"},
            ],
            "logging": {"access_log": False},
            "calls": {"database_url": f"sqlite:///{tmp}/calls.db", "transcribe_model": "whisper-local"},
        }
    )


def clip(source: Path, target: Path, seconds: float = 5.0) -> Path:
    with wave.open(str(source)) as audio:
        params, frames = audio.getparams(), audio.readframes(int(seconds * audio.getframerate()))
    with wave.open(str(target), "wb") as out:
        out.setparams(params)
        out.writeframes(frames)
    return target


async def bare_batch(
    models: ModelClient, extractor: Extractor, recordings: list[Path], calls: CallsSettings
) -> Summary:
    """Each recording transcribed then extracted, `calls.concurrency` at a time, and nothing else."""
    summary, todo = Summary(), list(recordings)

    async def worker() -> None:
        while todo:
            path, began = todo.pop(0), time.perf_counter()
            heard = await models.transcribe(path, calls.transcribe_model, calls.language)
            extraction = await extractor.extract(heard.text)
            summary.processed += 1
            summary.audio_seconds += heard.duration or 0.0
            summary.model_seconds += heard.seconds + extraction.seconds
            summary.busy_seconds += time.perf_counter() - began

    await asyncio.gather(*(worker() for _ in range(calls.concurrency)))
    return summary


async def child(config: str, emulator_url: str, recordings: list[Path]) -> dict[str, Any]:
    """Runs in its own process: open the models, warm them, time one batch of `recordings`."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(emulator_url, tmp)
        calls = settings.calls
        async with contextlib.AsyncExitStack() as stack:
            if config == "pipeline":
                pipeline = await stack.enter_async_context(open_pipeline(settings, None))
                models, extractor = pipeline.models, pipeline.extractor
            else:  # the same client and extractor as open_pipeline makes, without the pipeline around them
                models = await ModelClient.in_process(settings, None)
                stack.push_async_callback(models.aclose)
                extractor = Extractor.configured(models, ExtractionSchema.load(calls.schema_path), calls)
            spans = ModelSpans(models)
            warm = await models.transcribe(clip(recordings[0], Path(tmp, "warm.wav")), calls.transcribe_model, None)
            await extractor.extract(warm.text)
            spans.spans.clear()
            cpu_before = resource.getrusage(resource.RUSAGE_SELF)
            started = time.perf_counter()
            if config == "pipeline":
                source = LocalSource(str(recordings[0].parent))
                work: list[Work] = [(source, await source.stat(path.name)) for path in recordings]
                summary = await Runner(pipeline, calls.concurrency).run_batch(work)
            else:
                summary = await bare_batch(models, extractor, recordings, calls)
            ended = time.perf_counter()
            cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "config": config,
        "concurrency": calls.concurrency,
        "calls": summary.processed,
        "failed": summary.failed,
        "retried": summary.retried,
        "errors": summary.errors,
        "audio_s": summary.audio_seconds,
        "wall_s": ended - started,
        "busy_s": summary.busy_seconds,
        "model_s": summary.model_seconds,
        "outside_share": summary.outside_share,
        "idle_share": spans.idle_share(started, ended),
        "speech_idle_share": spans.idle_share(started, ended, "transcribe"),
        "spans": [(kind, round(begin - started, 3), round(end - started, 3)) for kind, begin, end in spans.spans],
        "cpu_s": sum(getattr(cpu_after, f) - getattr(cpu_before, f) for f in ("ru_utime", "ru_stime")),
    }


def run_child(config: str, emulator_url: str, recordings: list[Path]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", config, "--emulator", emulator_url, *map(str, recordings)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"{config} run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    sample = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    sample["log"] = done.stderr.splitlines()[-50:]  # the pipeline's warnings: why a call was retried
    if sample["failed"] or sample["retried"]:
        print("\n".join(sample["log"]), file=sys.stderr)
    return sample


def recordings_for(quick: bool) -> list[Path]:
    audio = RESULTS / "calls-audio"
    if len(list(audio.glob("*.wav"))) < 12:
        print(f"voicing calls-dev into {audio} with espeak-ng ...", file=sys.stderr, flush=True)
        generator = [sys.executable, str(CALLS_DEV / "generate_audio.py"), "--out", str(audio)]
        subprocess.run(generator, check=True, stdout=subprocess.DEVNULL)
    return sorted(audio.glob("*.wav"))[: 4 if quick else 12]


def derived(sample: dict[str, Any], cores: int) -> dict[str, float]:
    per_hour = 3600 / sample["wall_s"]
    return {
        "calls_per_hour": sample["calls"] * per_hour,
        "calls_per_hour_per_core": sample["calls"] * per_hour / cores,
        "audio_min_per_hour": sample["audio_s"] / 60 * per_hour,
        "rtf": sample["wall_s"] / sample["audio_s"],
        "outside_ms_per_call": 1000 * (sample["busy_s"] - sample["model_s"]) / sample["calls"],
        "outside_of_wall": (sample["busy_s"] - sample["model_s"]) / sample["wall_s"],
    }


def render(samples: list[dict[str, Any]], cores: int) -> tuple[str, dict[str, Any]]:
    medians: dict[str, Any] = {}
    for config in CONFIGS:
        rows = [{**s, **derived(s, cores)} for s in samples if s["config"] == config]
        numbers = [k for k, v in rows[0].items() if isinstance(v, int | float)]
        medians[config] = {k: statistics.median(r[k] for r in rows) for k in numbers}
    lines = [
        "| configuration | calls | audio min | wall s | calls/hour | calls/hour/core | audio min/hour | "
        "real-time factor | outside model calls | outside ms/call | outside / wall | no model call in flight | "
        "no transcription in flight | CPU s |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for config, m in medians.items():
        lines.append(
            f"| {config} | {m['calls']:.0f} | {m['audio_s'] / 60:.1f} | {m['wall_s']:.1f} | "
            f"{m['calls_per_hour']:.0f} | {m['calls_per_hour_per_core']:.0f} | {m['audio_min_per_hour']:.0f} | "
            f"{m['rtf']:.3f} | {m['outside_share']:.2%} | {m['outside_ms_per_call']:.0f} | "
            f"{m['outside_of_wall']:.2%} | {m['idle_share']:.2%} | {m['speech_idle_share']:.2%} | {m['cpu_s']:.0f} |"
        )
    ratio = medians["pipeline"]["calls_per_hour"] / medians["bare"]["calls_per_hour"]
    walls = {(s["rep"], s["config"]): s["wall_s"] for s in samples}
    per_run = [walls[rep, "bare"] / walls[rep, "pipeline"] for rep in sorted({s["rep"] for s in samples})]
    shown = ", ".join(f"{r:.3f}x" for r in per_run)
    lines += ["", f"pipeline/bare throughput (medians): {ratio:.3f}x; run by run: {shown}"]
    if retried := sum(s["retried"] for s in samples):
        lines.append(f"attempts retried after a transient failure: {retried} (why: `log` in the .json)")
    return "\n".join(lines), {"medians": medians, "pipeline_over_bare": ratio, "per_run": per_run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 recordings instead of 12")
    parser.add_argument("--runs", type=int, default=1, help="runs of each configuration (medians reported)")
    parser.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--emulator", help=argparse.SUPPRESS)
    parser.add_argument("recordings", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.child, args.emulator, args.recordings))))
        return
    recordings = recordings_for(args.quick)
    cores, load = len(os.sched_getaffinity(0)), os.getloadavg()[0]
    samples = []
    with ProcessGroup() as procs:
        port = free_port()
        emulator = procs.start([sys.executable, "-m", "aoai_gateway", "emulator", "--port", str(port)])
        wait_for_port(port, emulator, timeout=30)
        for rep in range(args.runs):
            for config in CONFIGS if rep % 2 == 0 else reversed(CONFIGS):  # alternate which goes first
                print(f"  run {rep + 1}/{args.runs}: {config} ...", file=sys.stderr, flush=True)
                emulator_before = cpu_ns(emulator.pid)
                sample = run_child(config, f"http://127.0.0.1:{port}", recordings)
                sample.update(rep=rep, emulator_cpu_s=(cpu_ns(emulator.pid) - emulator_before) / 1e9)
                samples.append(sample)
    report, summary = render(samples, cores)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    emulator_cpu = statistics.median(s["emulator_cpu_s"] for s in samples)
    header = (
        f"# Call analytics benchmark {stamp} UTC\n\n{len(recordings)} calls-dev recordings, {args.runs} run(s) per "
        f"configuration, concurrency {samples[0]['concurrency']} (calls.concurrency default), {cores} cores "
        f"(calls/hour/core divides by {cores}), load average {load:.2f} at the start and {os.getloadavg()[0]:.2f} "
        f"at the end; the emulator used {emulator_cpu:.2f} CPU s per run (median), on the same cores\n\n"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"calls-bench-{stamp}.md").write_text(header + report + "\n")
    (RESULTS / f"calls-bench-{stamp}.json").write_text(json.dumps({"samples": samples, **summary}, indent=1))
    print(header + report)
    if any(s["failed"] for s in samples):
        raise SystemExit(f"some calls failed: {[s['errors'] for s in samples if s['failed']]}")


if __name__ == "__main__":
    main()
