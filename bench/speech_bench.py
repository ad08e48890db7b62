"""Local speech benchmark: real-time factor, peak memory and word error rate, ours against the plain baseline.

    .venv/bin/python bench/speech_bench.py                 # 60 s and 10 min calls, about 14 minutes
    .venv/bin/python bench/speech_bench.py --quick         # the 60 s call only, about 1 minute
    .venv/bin/python bench/speech_bench.py --several       # 3 recordings of 10 min x 2 rounds, 15-20 minutes
    .venv/bin/python bench/speech_bench.py --several --quick   # smoke test: 1 recording of 1 min, 1 round

The calls are calls-dev's scripted sales calls voiced with espeak-ng (_speech_audio.py), cut at the first turn
boundary past 60 s and 600 s. Every configuration runs in a process of its own, so its peak RSS is its own:

- baseline: `faster_whisper.WhisperModel(path).transcribe(wav_path)` with every default (what every wrapper
  starts from: float32 here, beam 5, sequential 30 s windows, temperature fallback, no voice detection); run
  `--baseline-runs` times (3): its temperature fallback samples at random, so its word error rate is a mean
  (with the range) and its time the median;
- pipeline: the gateway's speech engine in-process, with the default `speech:` settings (audio decoding
  included, HTTP left out);
- gateway: `aoai-gateway serve` with a `provider: local` deployment, called with the OpenAI SDK over
  loopback (upload, decoding, transcription, response); RSS is the server process's peak.

Then throughput with several calls at once: one worker with every core (the default on two cores) against
two worker threads of one core each, and two processes of one core each. Model loading is timed apart and
left out of the real-time factor (a server loads its model once). The word error rate uses the normalisation
of aoai_gateway/speech/wer.py. The report is printed and saved as bench/results/speech-bench-<timestamp>.md (+ .json).

`--several [N]` (3) `--minutes M` (10) `--rounds R` (2) settles the README's speed claim on several recordings
(_speech_several.py): N different recordings of M minutes (other calls, order and voices each), on each of them
in interleaved order, R rounds, four configurations in processes of their own: the engine with `batch_size`
1 (A) and 4 (B, the default), `WhisperModel(path).transcribe()` with every default (C, the claim's baseline)
and `WhisperModel(path, compute_type="int8", cpu_threads=2).transcribe()` (D). It reports transcription
seconds, peak anonymous memory (RssAnon, sampled every 0.1 s) and WER per run, and the speed-ups of A and B
over C and D paired within each round (median, min-max). Saved as bench/results/speech-several-<timestamp>.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

from _procs import ProcessGroup, free_port, wait_for_port  # noqa: E402
from _speech_audio import VoicedCall, voice_call  # noqa: E402
from _speech_several import as_json, measure_several, render_several  # noqa: E402

from aoai_gateway.speech.wer import word_error_rate  # noqa: E402

CALLS = ROOT.parent / "shared" / "calls-dev" / "calls"
RESULTS = ROOT / "bench" / "results"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(config: str, audio: Path, threads: int, workers: int, replicas: int, copies: int) -> dict[str, Any]:
    """Runs in its own process: load, transcribe `copies` times (`workers` at once), report.

    0 for `threads`, `workers` or `replicas` takes what the gateway would choose on this machine (pool_size).
    """
    from aoai_gateway.config.speech import SpeechSettings, bundled_model_path
    from aoai_gateway.speech.pool import pool_size

    path = bundled_model_path()
    started = time.perf_counter()
    if config == "baseline":
        from faster_whisper import WhisperModel

        model = WhisperModel(path)

        def run() -> str:
            segments, _ = model.transcribe(str(audio))
            return "".join(segment.text for segment in segments)
    else:
        from aoai_gateway.speech.audio import decode_audio
        from aoai_gateway.speech.engine import Decoding, SpeechModel

        size = pool_size(workers, threads)
        workers = size.workers
        engine = SpeechModel(path, SpeechSettings(), replicas=replicas or size.replicas, cpu_threads=size.cpu_threads)

        def run() -> str:
            samples = decode_audio(memoryview(audio.read_bytes()))
            _, batches = engine.transcribe(samples, Decoding())
            return "".join(segment.text for batch in batches for segment in batch)

    loaded = time.perf_counter()
    with ThreadPoolExecutor(workers or 1) as pool:
        texts = list(pool.map(lambda _: run(), range(copies)))
    done = time.perf_counter()
    return {"load_s": loaded - started, "wall_s": done - loaded, "peak_rss_mb": peak_rss_mb(), "text": texts[0]}


def in_child(
    config: str, call: VoicedCall, threads: int = 0, workers: int = 0, replicas: int = 0, copies: int = 1
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", config, "--audio", str(call.path), "--threads", str(threads)]
    command += ["--workers", str(workers), "--replicas", str(replicas), "--copies", str(copies)]
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def through_gateway(call: VoicedCall) -> dict[str, Any]:
    """`aoai-gateway serve` with one local deployment, called with the OpenAI SDK."""
    from openai import OpenAI

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp, ProcessGroup() as procs:
        config = Path(tmp, "config.yaml")
        config.write_text("deployments: [{model: whisper-local, provider: local}]\nlogging: {access_log: false}\n")
        serve = [sys.executable, "-m", "aoai_gateway", "serve", "--config", str(config), "--port", str(port)]
        proc = procs.start(serve)
        wait_for_port(port, proc, timeout=60)
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="local", max_retries=0, timeout=1800)
        started = time.perf_counter()
        with call.path.open("rb") as file:
            text = client.audio.transcriptions.create(model="whisper-local", file=file).text
        wall = time.perf_counter() - started
        status = Path(f"/proc/{proc.pid}/status").read_text()
        hwm = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return {"load_s": None, "wall_s": wall, "peak_rss_mb": int(hwm.split()[1]) / 1024, "text": text}


def measure(call: VoicedCall, label: str, baseline_runs: int) -> list[dict[str, Any]]:
    rows = []
    for config, run in (
        ("baseline", lambda: in_child("baseline", call)),
        ("pipeline", lambda: in_child("pipeline", call)),
        ("gateway", lambda: through_gateway(call)),
    ):
        # The baseline's temperature fallback samples at random: its word error rate moves run to run.
        runs = baseline_runs if config == "baseline" else 1
        results = []
        for n in range(runs):
            print(f"  {label} {config} {n + 1}/{runs} ...", file=sys.stderr, flush=True)
            results.append(run())
        result = dict(results[0])
        wers = [word_error_rate(call.text, r["text"]) for r in results]
        result.update(
            call=label,
            config=config,
            audio_s=call.seconds,
            wall_s=sorted(r["wall_s"] for r in results)[len(results) // 2],
            wer=sum(wers) / len(wers),
            wer_range=(min(wers), max(wers)),
        )
        result["rtf"] = result["wall_s"] / call.seconds
        rows.append(result)
    return rows


def throughput(call: VoicedCall, copies: int) -> list[dict[str, Any]]:
    """Several calls at once: which way of sharing two cores finishes them all soonest."""
    cores = len(os.sched_getaffinity(0))
    rows = []
    for label, workers, replicas, threads in (
        (f"1 at once, {cores} replicas x 1 thread (the default)", 1, cores, 1),
        (f"1 at once, 1 replica x {cores} threads", 1, 1, cores),
        (f"{cores} at once, {cores} replicas x 1 thread", cores, cores, 1),
    ):
        print(f"  throughput: {label} ...", file=sys.stderr, flush=True)
        result = in_child("pipeline", call, threads=threads, workers=workers, replicas=replicas, copies=copies)
        rows.append({"setup": label, "wall_s": result["wall_s"], "peak_rss_mb": result["peak_rss_mb"]})
    print(f"  throughput: {cores} processes x 1 thread ...", file=sys.stderr, flush=True)
    command = [sys.executable, __file__, "--child", "pipeline", "--audio", str(call.path), "--threads", "1"]
    command += ["--workers", "1", "--replicas", "1", "--copies", str(copies // cores)]
    started = time.perf_counter()
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(cores)]
    outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    # Each process loads its own model first; count only the transcription part, as above.
    wall = time.perf_counter() - started - max(out["load_s"] for out in outs)
    rss = sum(out["peak_rss_mb"] for out in outs)
    rows.append({"setup": f"{cores} processes x 1 thread", "wall_s": wall, "peak_rss_mb": rss})
    for row in rows:
        row["calls_per_minute"] = copies / row["wall_s"] * 60
    return rows


def render(rows: list[dict[str, Any]], pools: list[dict[str, Any]], copies: int) -> str:
    lines = [
        "| call | configuration | audio s | load s | transcribe s | real-time factor | speed-up | peak RSS MB | WER |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        base = next(r for r in rows if r["call"] == row["call"] and r["config"] == "baseline")
        load = "" if row["load_s"] is None else f"{row['load_s']:.2f}"
        low, high = row["wer_range"]
        wer = f"{row['wer']:.3f}" + (f" ({low:.3f}-{high:.3f})" if low < high else "")
        lines.append(
            f"| {row['call']} | {row['config']} | {row['audio_s']:.0f} | {load} | {row['wall_s']:.1f} | "
            f"{row['rtf']:.4f} | {base['wall_s'] / row['wall_s']:.1f}x | {row['peak_rss_mb']:.0f} | {wer} |"
        )
    if pools:
        lines += ["", f"Throughput, {copies} calls of 60 s at once:", ""]
        lines += ["| setup | all done in s | calls per minute | peak RSS MB (all processes) |", "|---|--:|--:|--:|"]
        lines += [
            f"| {p['setup']} | {p['wall_s']:.1f} | {p['calls_per_minute']:.1f} | {p['peak_rss_mb']:.0f} |"
            for p in pools
        ]
    return "\n".join(lines)


def several(args: argparse.Namespace, cache: Path) -> None:
    recordings, minutes, rounds = (1, 1.0, 1) if args.quick else (args.several, args.minutes, args.rounds)
    started, load = time.perf_counter(), os.getloadavg()[0]
    runs = measure_several(args.calls, cache, recordings, minutes, rounds)
    report = render_several(runs)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    from ctranslate2 import __version__ as ct2
    from faster_whisper import __version__ as fw

    header = (
        f"# Speech benchmark, several recordings {stamp}\n\n{recordings} recording(s) of {minutes:g} min, "
        f"{rounds} round(s); {os.cpu_count()} CPUs, load average {load:.2f} at the start and "
        f"{os.getloadavg()[0]:.2f} at the end; faster-whisper {fw} / CTranslate2 {ct2}; "
        f"{time.perf_counter() - started:.0f} s in all\n\n"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"speech-several-{stamp}.md").write_text(header + report + "\n")
    (RESULTS / f"speech-several-{stamp}.json").write_text(as_json(runs))
    print(header + report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=Path, default=CALLS, help="calls-dev's calls/ folder (call scripts)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the 60 s call only, no throughput runs; with --several: 1 recording of 1 min, 1 round",
    )
    parser.add_argument("--copies", type=int, default=4, help="calls at once in the throughput runs")
    parser.add_argument(
        "--baseline-runs", type=int, default=3, help="runs of the baseline per call: its WER is a mean (default 3)"
    )
    parser.add_argument(
        "--several",
        type=int,
        nargs="?",
        const=3,
        metavar="N",
        help="N recordings (3), engine batch 1 and 4 against two plain faster-whisper runs, interleaved",
    )
    parser.add_argument("--minutes", type=float, default=10, help="--several: length of each recording (10)")
    parser.add_argument("--rounds", type=int, default=2, help="--several: interleaved rounds (2)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--audio", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--replicas", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.audio, args.threads, args.workers, args.replicas, args.copies)))
        return
    if not args.calls.is_dir():
        raise SystemExit(f"call scripts not found in {args.calls}: pass --calls DIR (calls-dev's calls/)")
    cache = RESULTS / "speech-audio"
    if args.several is not None:
        several(args, cache)
        return
    calls = {"60 s": voice_call(args.calls, 60, cache)}
    if not args.quick:
        calls["10 min"] = voice_call(args.calls, 600, cache)
    rows = [row for label, call in calls.items() for row in measure(call, label, args.baseline_runs)]
    pools = [] if args.quick else throughput(calls["60 s"], args.copies)
    report = render(rows, pools, args.copies)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    load = os.getloadavg()[0]
    header = f"# Speech benchmark {stamp}\n\n{os.cpu_count()} CPUs, load average {load:.2f} at the end\n\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"speech-bench-{stamp}.md").write_text(header + report + "\n")
    (RESULTS / f"speech-bench-{stamp}.json").write_text(json.dumps({"rows": rows, "throughput": pools}, indent=1))
    print(header + report)


if __name__ == "__main__":
    main()
