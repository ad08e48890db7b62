"""Several recordings, interleaved runs: the gateway's speech engine against plain faster-whisper (`--several`).

runs = measure_several(calls_dir, cache, recordings=3, minutes=10, rounds=2)
print(render_several(runs))                 # a table per recording, then the speed-ups, memory and WER

Four configurations (CONFIGS), each run in a process of its own (`python bench/_speech_several.py A file.wav`)
so that its peak memory is its own:

- A: the gateway's engine (aoai_gateway.speech.engine.SpeechModel) with `speech.batch_size: 1`, pool sized as
  the gateway sizes it on this machine (speech/pool.py), decoding of the file included;
- B: the same with `speech.batch_size: 4` (the default);
- C: the baseline of the README's speed claim: `WhisperModel(path).transcribe(wav)` with every default;
- D: a plain tuned baseline: `WhisperModel(path, compute_type="int8", cpu_threads=2).transcribe(wav)`.

Every run transcribes the whole recording (segments consumed to the end). Seconds are the transcription's
alone: the child reports when its model is loaded and the clock starts there. Memory is anonymous resident
memory (RssAnon: the heap, not the model file's or a long recording's mapped page cache), sampled by the parent
from /proc/<pid>/status every 0.1 s from the end of the model load to the end of the process; the child's own
RssAnon right after loading is the base of the "+ MB" column. Runs are interleaved: in round r the configurations
of recording i run in the order CONFIGS rotated by r + i, so a neighbour's load on the machine falls on each
configuration in turn, and every speed-up is a ratio of two runs of the same round and recording.
"""

from __future__ import annotations

import json
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from _speech_audio import VoicedCall, voice_call

from aoai_gateway.speech.wer import word_error_rate

CONFIGS = {
    "A": "engine, batch_size 1",
    "B": "engine, batch_size 4 (default)",
    "C": "WhisperModel(path) defaults",
    "D": "WhisperModel int8, cpu_threads=2",
}
ENGINES, BASELINES = ("A", "B"), ("C", "D")
SAMPLE_EVERY_S = 0.1


@dataclass(frozen=True)
class Run:
    """One configuration transcribing one recording once, in its own process."""

    recording: str
    round: int
    position: int  # 1-4: where it ran in its round's order
    config: str
    audio_s: float
    load_s: float
    wall_s: float
    loaded_anon_mb: float  # RssAnon right after the model load
    peak_anon_mb: float  # highest RssAnon sampled during the transcription
    hwm_mb: float  # VmHWM at the end: peak of all resident memory, file pages and the load included
    wer: float

    @property
    def rtf(self) -> float:
        return self.wall_s / self.audio_s


# --- the child: load one configuration, say so, transcribe, report --------------------------------------------


def _engine(batch_size: int) -> Callable[[Path], str]:
    from aoai_gateway.config.speech import SpeechSettings, bundled_model_path
    from aoai_gateway.speech.audio import decode_audio
    from aoai_gateway.speech.engine import Decoding, SpeechModel
    from aoai_gateway.speech.pool import pool_size

    size = pool_size(0, 0)
    settings = SpeechSettings(batch_size=batch_size)
    model = SpeechModel(bundled_model_path(), settings, replicas=size.replicas, cpu_threads=size.cpu_threads)

    def run(audio: Path) -> str:
        samples = decode_audio(memoryview(audio.read_bytes()))
        _, batches = model.transcribe(samples, Decoding())
        return "".join(segment.text for batch in batches for segment in batch)

    return run


def _plain(**options: Any) -> Callable[[Path], str]:
    from faster_whisper import WhisperModel

    from aoai_gateway.config.speech import bundled_model_path

    model = WhisperModel(bundled_model_path(), **options)

    def run(audio: Path) -> str:
        segments, _ = model.transcribe(str(audio))
        return "".join(segment.text for segment in segments)

    return run


LOADERS: dict[str, Callable[[], Callable[[Path], str]]] = {
    "A": lambda: _engine(1),
    "B": lambda: _engine(4),
    "C": lambda: _plain(),
    "D": lambda: _plain(compute_type="int8", cpu_threads=2),
}


def _status_mb(pid: int | str, field: str) -> float:
    """A memory line of /proc/<pid>/status in MB ("RssAnon", "VmHWM"); 0 once the process is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    line = next((line for line in status.splitlines() if line.startswith(f"{field}:")), None)
    return int(line.split()[1]) / 1024 if line else 0.0


def child(config: str, audio: Path) -> None:
    started = time.perf_counter()
    run = LOADERS[config]()
    loaded = time.perf_counter()
    print(json.dumps({"load_s": loaded - started, "loaded_anon_mb": _status_mb("self", "RssAnon")}), flush=True)
    text = run(audio)
    wall = time.perf_counter() - loaded
    print(json.dumps({"wall_s": wall, "hwm_mb": _status_mb("self", "VmHWM"), "text": text}), flush=True)


# --- the parent: run one child, sampling its memory -----------------------------------------------------------


def _forward(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def run_once(config: str, call: VoicedCall, recording: str, round_: int, position: int) -> Run:
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [sys.executable, __file__, config, str(call.path)], stdout=subprocess.PIPE, stderr=errors, text=True
        )
        assert proc.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=_forward, args=(proc.stdout, lines), daemon=True)
        reader.start()
        reports: list[dict[str, object]] = []
        peak = 0.0
        while True:
            while not lines.empty():
                reports.append(json.loads(lines.get()))
            if reports:  # the model is loaded: the transcription runs
                peak = max(peak, _status_mb(proc.pid, "RssAnon"))
            if proc.poll() is not None:
                break
            time.sleep(SAMPLE_EVERY_S)
        reader.join()
        while not lines.empty():
            reports.append(json.loads(lines.get()))
        if proc.returncode != 0 or len(reports) != 2:
            errors.seek(0)
            tail = errors.read().decode(errors="replace")[-2000:]
            raise SystemExit(f"{config} on {call.path} failed (exit {proc.returncode}):\n{tail}")
    load, done = reports
    return Run(
        recording=recording,
        round=round_,
        position=position,
        config=config,
        audio_s=call.seconds,
        load_s=float(load["load_s"]),  # type: ignore[arg-type]
        wall_s=float(done["wall_s"]),  # type: ignore[arg-type]
        loaded_anon_mb=float(load["loaded_anon_mb"]),  # type: ignore[arg-type]
        peak_anon_mb=peak,
        hwm_mb=float(done["hwm_mb"]),  # type: ignore[arg-type]
        wer=word_error_rate(call.text, str(done["text"])),
    )


def measure_several(calls_dir: Path, cache: Path, recordings: int, minutes: float, rounds: int) -> list[Run]:
    """Voice (or reuse) `recordings` recordings of `minutes`, then run every configuration on each, interleaved."""
    calls = {}
    for variant in range(recordings):
        print(f"  voicing recording {variant + 1}/{recordings} ({minutes:g} min) ...", file=sys.stderr, flush=True)
        call = voice_call(calls_dir, minutes * 60, cache, variant=variant)
        calls[f"rec{variant + 1} ({call.path.name}, {call.seconds / 60:.1f} min)"] = call
    order = list(CONFIGS)
    runs = []
    for round_ in range(rounds):
        for i, (label, call) in enumerate(calls.items()):
            shift = (round_ + i) % len(order)
            for position, config in enumerate(order[shift:] + order[:shift], 1):
                print(f"  round {round_ + 1}/{rounds} {label} {config} ...", file=sys.stderr, end=" ", flush=True)
                run = run_once(config, call, label, round_ + 1, position)
                print(f"{run.wall_s:.1f} s, {run.peak_anon_mb:.0f} MB, WER {run.wer:.3f}", file=sys.stderr)
                runs.append(run)
    return runs


# --- the report -----------------------------------------------------------------------------------------------


def _spread(values: Iterable[float], fmt: str = "{:.2f}") -> str:
    """median (min-max)."""
    values = sorted(values)
    if not values:
        return ""
    middle = fmt.format(statistics.median(values))
    if len(values) == 1:
        return middle
    return f"{middle} ({fmt.format(values[0])}-{fmt.format(values[-1])})"


def speedups(runs: list[Run], engine: str, baseline: str) -> list[float]:
    """baseline seconds / engine seconds, paired within each round of each recording."""
    by_key = {(run.recording, run.round, run.config): run.wall_s for run in runs}
    return [
        by_key[(rec, rnd, baseline)] / wall
        for (rec, rnd, config), wall in by_key.items()
        if config == engine and (rec, rnd, baseline) in by_key
    ]


def render_several(runs: list[Run]) -> str:
    lines = []
    for recording in dict.fromkeys(run.recording for run in runs):
        lines += [
            f"### {recording}",
            "",
            "| round | order | configuration | transcribe s | RTF | load s | RssAnon loaded MB | peak RssAnon MB "
            "| + MB | VmHWM MB | WER |",
            "|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for r in sorted((run for run in runs if run.recording == recording), key=lambda r: (r.round, r.position)):
            lines.append(
                f"| {r.round} | {r.position} | {r.config}: {CONFIGS[r.config]} | {r.wall_s:.1f} | {r.rtf:.4f} "
                f"| {r.load_s:.2f} | {r.loaded_anon_mb:.0f} | {r.peak_anon_mb:.0f} "
                f"| {r.peak_anon_mb - r.loaded_anon_mb:+.0f} | {r.hwm_mb:.0f} | {r.wer:.3f} |"
            )
        lines.append("")
    recordings = len({run.recording for run in runs})
    lines += [
        f"### Speed-ups over {recordings} recording(s), paired within each round: median (min-max)",
        "",
        "| engine | over C (faster-whisper defaults) | over D (int8, 2 threads) | pairs |",
        "|---|--:|--:|--:|",
    ]
    for engine in ENGINES:
        over = [speedups(runs, engine, baseline) for baseline in BASELINES]
        cells = " | ".join(_spread(ratios, "{:.2f}x") for ratios in over)
        lines.append(f"| {engine}: {CONFIGS[engine]} | {cells} | {len(over[0])} |")
    lines += [
        "",
        "### Per configuration, all runs: median (min-max)",
        "",
        "| configuration | RTF | peak RssAnon MB | + MB over loaded | WER |",
        "|---|--:|--:|--:|--:|",
    ]
    for config, name in CONFIGS.items():
        mine = [run for run in runs if run.config == config]
        lines.append(
            f"| {config}: {name} | {_spread((r.rtf for r in mine), '{:.4f}')} "
            f"| {_spread((r.peak_anon_mb for r in mine), '{:.0f}')} "
            f"| {_spread((r.peak_anon_mb - r.loaded_anon_mb for r in mine), '{:.0f}')} "
            f"| {_spread((r.wer for r in mine), '{:.3f}')} |"
        )
    return "\n".join(lines)


def as_json(runs: list[Run]) -> str:
    return json.dumps([asdict(run) | {"rtf": run.rtf} for run in runs], indent=1)


if __name__ == "__main__":
    child(sys.argv[1], Path(sys.argv[2]))
