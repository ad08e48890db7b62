"""`calls eval`: run the pipeline on a scored development set and report how good the answers are.

    aoai-gateway calls eval ../shared/calls-dev --config config.yaml --out calls-eval

The set is a folder in the calls-dev layout: `calls/<id>.json` (the spoken turns and the `gold` answer),
`score.py` (the field scorer) and, optionally, `generate_audio.py` (espeak-ng recordings). Recordings come from
`--audio`, else `DIR/audio`, else are generated into the output folder. The calls run in a database of their own
(OUT/eval.db, fresh each time: a measurement must not be answered from an earlier run's documents); the output
folder receives predictions.jsonl, transcripts.jsonl and scores.json. Printed: the scorer's per-field precision,
recall and F1 (its last line `overall_f1=`), then the transcripts' word error rate against the spoken text.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..config import Settings
from ..speech.wer import normalise, word_error_rate
from .errors import CallError
from .sources import LocalSource, is_audio


async def run_eval(args: argparse.Namespace, settings: Settings) -> int:
    from .cli import open_pipeline
    from .runner import Runner

    root = Path(args.set).expanduser().resolve()
    scripts = {json.loads(path.read_text(encoding="utf-8"))["id"]: path for path in sorted(root.glob("calls/*.json"))}
    if not scripts:
        raise CallError(f"{root}: no calls/*.json: expected a calls-dev style folder")
    out = Path(args.out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    audio = _recordings(root, args.audio, out)
    database = out / "eval.db"
    for stale in (database, out / "eval.db-wal", out / "eval.db-shm"):
        stale.unlink(missing_ok=True)
    settings = settings.model_copy(
        update={"calls": settings.calls.model_copy(update={"database_url": f"sqlite:///{database}"})}
    )
    source = LocalSource(str(audio))
    items = [item for item in await source.scan() if Path(item.name).stem in scripts]
    if not items:
        raise CallError(f"{audio}: no recordings named after the set's call ids (e.g. {next(iter(scripts))}.wav)")
    async with open_pipeline(settings, settings.calls.model_key) as pipeline:
        summary = await Runner(pipeline, settings.calls.concurrency).run_batch([(source, item) for item in items])
        records = {Path(r.name).stem: r for r in await pipeline.store.query(limit=None)}

    predictions, transcripts, rates = [], [], []
    for call_id, script in scripts.items():
        record = records.get(call_id)
        fields = (record.fields if record else None) or {}
        predictions.append({"id": call_id, "fields": fields})
        heard = str(((record.transcription if record else None) or {}).get("text") or "")
        spoken = " ".join(turn["text"] for turn in json.loads(script.read_text(encoding="utf-8"))["turns"])
        rate = word_error_rate(spoken, heard)
        rates.append((rate, len(normalise(spoken))))
        transcripts.append({"id": call_id, "wer": round(rate, 4), "transcript": heard})
    _write_jsonl(out / "predictions.jsonl", predictions)
    _write_jsonl(out / "transcripts.jsonl", transcripts)

    for line in summary.lines():
        print(line)
    scorer = root / "score.py"
    status = 0
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
        status = subprocess.run(command, check=False).returncode
    else:
        print(f"no score.py in {root}: field scores skipped (predictions in {out / 'predictions.jsonl'})")
    words = sum(n for _, n in rates)
    pooled = sum(rate * n for rate, n in rates) / max(words, 1)
    print(f"transcript_wer={pooled:.4f} (over {words} words, {len(rates)} calls; per call in transcripts.jsonl)")
    return status or (1 if summary.failed else 0)


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
