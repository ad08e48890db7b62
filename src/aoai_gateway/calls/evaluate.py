"""`calls eval`: run the pipeline on a scored development set and report how good the answers are.

    aoai-gateway calls eval ../shared/calls-dev --config config.yaml --out calls-eval
    aoai-gateway calls eval ../shared/calls-dev --config config.yaml --transcripts both   # speech vs extraction

The set is a folder in the calls-dev layout: `calls/<id>.json` (the spoken turns and the `gold` answer),
`score.py` (the field scorer) and, optionally, `generate_audio.py` (espeak-ng recordings). `--transcripts`
says what the extraction reads: `audio` (the default) transcribes the recordings, from `--audio`, else `DIR/audio`,
else generated into the output folder; `gold` skips speech and reads each script's turns as a perfect transcript;
`both` runs the two, so that what speech recognition loses and what extraction loses are measured apart. Each
mode runs in a database of its own (OUT/eval.db, or OUT/audio/eval.db and OUT/gold/eval.db with `both`; fresh
each time: a measurement must not be answered from an earlier run's documents) and its folder receives
predictions.jsonl, transcripts.jsonl, evidence.jsonl and scores.json. Printed per mode, under a heading naming
it: the scorer's per-field precision, recall and F1 (its last line `overall_f1=`), the transcripts' word error
rate against the spoken text, how many of the gold names (customer, company, the location's city) the transcript
the model read holds word for word (`names_heard=`: what speech recognition left to extract), the values
dropped for want of a quote, and the median seconds per call of each model step (`seconds_per_call=`); with
`both`, then, the per-field F1 of the two side by side and `overall_f1_audio=... overall_f1_gold=...`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings
from ..speech.wer import normalise, word_error_rate
from .errors import CallError
from .quotes import find_quote
from .sources import LocalSource, Source, is_audio

MODES = ("audio", "gold")
NAMES = ("customer_name", "company", "location")  # the fields speech recognition loses (gold values, in calls-dev)
HEADINGS = {
    "audio": "transcripts from the audio (speech recognition, then extraction)",
    "gold": "gold transcripts (the scripts' turns, no speech: extraction alone)",
}


@dataclass(frozen=True)
class ModeResult:
    mode: str
    status: int
    scores: dict[str, Any] | None  # score.py's --json output


async def run_eval(args: argparse.Namespace, settings: Settings) -> int:
    root = Path(args.set).expanduser().resolve()
    scripts = {json.loads(path.read_text(encoding="utf-8"))["id"]: path for path in sorted(root.glob("calls/*.json"))}
    if not scripts:
        raise CallError(f"{root}: no calls/*.json: expected a calls-dev style folder")
    out = Path(args.out).expanduser().resolve()
    modes = MODES if args.transcripts == "both" else (args.transcripts,)
    results = []
    for mode in modes:
        print(f"=== calls eval: {HEADINGS[mode]} ===")
        folder = out / mode if len(modes) > 1 else out
        results.append(await _run_mode(mode, root, scripts, folder, settings, args.audio))
    if len(results) > 1:
        _compare(results)
    return max(result.status for result in results)


async def _run_mode(
    mode: str, root: Path, scripts: dict[str, Path], out: Path, settings: Settings, audio: str | None
) -> ModeResult:
    from .cli import open_pipeline
    from .runner import Runner
    from .transcribers import ScriptTranscriber

    out.mkdir(parents=True, exist_ok=True)
    database = out / "eval.db"
    for stale in (database, out / "eval.db-wal", out / "eval.db-shm"):
        stale.unlink(missing_ok=True)
    settings = settings.model_copy(
        update={"calls": settings.calls.model_copy(update={"database_url": f"sqlite:///{database}"})}
    )
    source: Source
    if mode == "gold":
        source = LocalSource(str(root / "calls"), suffixes=frozenset({".json"}))
        transcriber = ScriptTranscriber()
    else:
        source = LocalSource(str(_recordings(root, audio, out)))
        transcriber = None
    items = [item for item in await source.scan() if Path(item.name).stem in scripts]
    if not items:
        raise CallError(f"{source.uri}: no recordings named after the set's call ids (e.g. {next(iter(scripts))}.wav)")
    async with open_pipeline(settings, settings.calls.model_key, transcriber) as pipeline:
        summary = await Runner(pipeline, settings.calls.concurrency).run_batch([(source, item) for item in items])
        records = {Path(r.name).stem: r for r in await pipeline.store.query(limit=None)}

    predictions, transcripts, evidence, rates = [], [], [], []
    dropped = 0
    seconds: dict[str, list[float]] = {"transcription": [], "extraction": []}
    heard_names = {name: [0, 0] for name in NAMES}  # found, asked
    for call_id, script in scripts.items():
        record = records.get(call_id)
        document = (record.document if record else None) or {}
        predictions.append({"id": call_id, "fields": (record.fields if record else None) or {}})
        heard = str(((record.transcription if record else None) or {}).get("text") or "")
        content = json.loads(script.read_text(encoding="utf-8"))
        spoken = " ".join(turn["text"] for turn in content["turns"])
        read = str(document.get("resolved_transcript") or heard)
        for name, tally in heard_names.items():
            value = (content.get("gold") or {}).get(name)
            if isinstance(value, str) and value.strip():
                match = find_quote(value.split(",")[0], read)  # a location's city: the part before the comma
                tally[0] += bool(match and match.score == 1.0)
                tally[1] += 1
        rate = word_error_rate(spoken, heard)
        rates.append((rate, len(normalise(spoken))))
        transcripts.append(
            {"id": call_id, "wer": round(rate, 4), "transcript": heard, "resolved": document.get("resolved_transcript")}
        )
        evidence.append({"id": call_id, "evidence": document.get("evidence") or {}})
        used = document.get("models") or {}
        dropped += int((used.get("extraction") or {}).get("dropped") or 0)
        for step, spent in seconds.items():
            took = (used.get(step) or {}).get("seconds")
            if isinstance(took, int | float):
                spent.append(float(took))
    _write_jsonl(out / "predictions.jsonl", predictions)
    _write_jsonl(out / "transcripts.jsonl", transcripts)
    _write_jsonl(out / "evidence.jsonl", evidence)

    for line in summary.lines():
        print(line)
    scorer = root / "score.py"
    status, scores = 0, None
    if scorer.is_file():
        command = [
            sys.executable,
            str(scorer),
            "--gold-dir",
            str(root / "calls"),
            "--pred",
            str(out / "predictions.jsonl"),
            "--json",
            str(out / "scores.json"),
        ]
        sys.stdout.flush()  # the scorer writes to the same stream: keep the order
        status = subprocess.run(command, check=False).returncode
        if (out / "scores.json").is_file():
            scores = json.loads((out / "scores.json").read_text(encoding="utf-8"))
    else:
        print(f"no score.py in {root}: field scores skipped (predictions in {out / 'predictions.jsonl'})")
    words = sum(n for _, n in rates)
    pooled = sum(rate * n for rate, n in rates) / max(words, 1)
    print(f"transcript_wer={pooled:.4f} (over {words} words, {len(rates)} calls; per call in transcripts.jsonl)")
    names = ", ".join(f"{name} {found}/{asked}" for name, (found, asked) in heard_names.items())
    print(f"names_heard={names} (gold names word for word in the transcript the model read)")
    print(f"values_dropped_without_quote={dropped} (per field in evidence.jsonl)")
    timing = ", ".join(
        f"{step} median {statistics.median(spent):.1f} s (max {max(spent):.1f})"
        for step, spent in seconds.items()
        if spent
    )
    print(f"seconds_per_call={timing or '-'} (wall time, --concurrency calls at once)")
    return ModeResult(mode, status or (1 if summary.failed else 0), scores)


def _compare(results: list[ModeResult]) -> None:
    """Per-field F1 of each mode side by side: the gap between them is what speech recognition costs."""
    print("=== calls eval: field F1, from the audio and from the gold transcripts ===")
    fields: list[str] = []
    for result in results:
        fields += [name for name in (result.scores or {}).get("fields", {}) if name not in fields]
    print(f"{'field':22s} " + " ".join(f"{r.mode:>7s}" for r in results))

    def f1(result: ModeResult, name: str) -> str:
        value = ((result.scores or {}).get("fields", {}).get(name) or {}).get("f1")
        return f"{value:7.3f}" if isinstance(value, int | float) else f"{'-':>7s}"

    for name in fields:
        print(f"{name:22s} " + " ".join(f1(r, name) for r in results))
    overall = []
    for result in results:
        value = (result.scores or {}).get("overall_f1")
        overall.append(f"overall_f1_{result.mode}=" + (f"{value:.2f}" if isinstance(value, int | float) else "-"))
    print(" ".join(overall))


def _recordings(root: Path, given: str | None, out: Path) -> Path:
    for candidate in ([Path(given).expanduser()] if given else []) + [root / "audio", out / "audio"]:
        if candidate.is_dir() and any(is_audio(path.name) for path in candidate.iterdir()):
            return candidate.resolve()
    if given:
        raise CallError(f"--audio {given}: no recordings there")
    generator = root / "generate_audio.py"
    if not generator.is_file() or shutil.which("espeak-ng") is None:
        raise CallError(
            f"no recordings in {root / 'audio'}: pass --audio DIR, or install espeak-ng (apt-get install espeak-ng) "
            "so that the set's generate_audio.py can make them"
        )
    print(f"generating the recordings with espeak-ng into {out / 'audio'} ...", file=sys.stderr)
    subprocess.run([sys.executable, str(generator), "--out", str(out / "audio")], check=True, stdout=sys.stderr)
    return out / "audio"


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
