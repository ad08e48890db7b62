"""Score a `calls eval` run again with this checkout's grounding, without running any model.

    .venv/bin/python bench/calls_reground.py calls-eval/                       # one run's --out folder
    .venv/bin/python bench/calls_reground.py gold-run/ audio-run/ --set ../shared/calls-dev

Grounding (calls/grounding.py, roles.py, corrections.py, numbers.py) runs after the model: what it changes can be
measured on the model's stored answers, which a local model takes half an hour to produce again. For each run
folder (`calls eval --out`), every processed call's answer is rebuilt from its evidence (the value and quote the
model gave for each field; `was` where grounding had settled a field, so the model's own answer is used), grounded
again against its stored transcript with the current code and the bundled schema, written to
`<run>/regrounded.jsonl`, and scored with the set's `score.py` beside the run's own `predictions.jsonl`.

What it cannot replay: a change to the prompt, the schema the model sees or the transcription (those need a new
`calls eval`), and fields the model left null (no evidence: null again).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from aoai_gateway.calls.grounding import field_kind, ground  # noqa: E402
from aoai_gateway.calls.pipeline import read_transcript  # noqa: E402
from aoai_gateway.calls.schema import ExtractionSchema  # noqa: E402


def model_answer(document: dict[str, Any], schema: ExtractionSchema) -> dict[str, Any]:
    """The model's answer to one call, as the grounded schema asks it, rebuilt from the stored evidence."""
    evidence = document["evidence"]
    answer: dict[str, Any] = {}
    for name, prop in schema.schema["properties"].items():
        kind = field_kind(prop)
        if kind == "plain":
            answer[name] = document["fields"].get(name)
        elif kind == "list":
            answer[name] = [_pair(note) for note in evidence.get(name, [])]
        else:
            answer[name] = _pair(evidence.get(name))
    return answer


def _pair(note: Any) -> dict[str, Any]:
    if not isinstance(note, dict):
        return {"value": None, "quote": None}
    given = note.get("was") if isinstance(note.get("was"), dict) else note
    return {"value": given.get("value"), "quote": given.get("quote")}


def reground(run: Path, out: Path) -> int:
    schema = ExtractionSchema.load(None)
    connection = sqlite3.connect(f"file:{run / 'eval.db'}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT name, transcription, document FROM calls WHERE status = 'done' ORDER BY name"
        ).fetchall()
    finally:
        connection.close()
    with out.open("w") as lines:
        for name, transcription, document in rows:
            _, read, _ = read_transcript(json.loads(transcription))  # what the model read, as the pipeline makes it
            grounded = ground(model_answer(json.loads(document), schema), schema, read)
            lines.write(json.dumps({"id": name.rsplit(".", 1)[0], "fields": grounded.fields}) + "\n")
    return len(rows)


def score(dataset: Path, predictions: Path) -> dict[str, str]:
    """score.py's per-field F1 and overall, by name."""
    shown = subprocess.run(
        [sys.executable, str(dataset / "score.py"), "--gold-dir", str(dataset / "calls"), "--pred", str(predictions)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures: dict[str, str] = {}
    for line in shown.splitlines():
        parts = line.split()
        if len(parts) == 7 and parts[1].isdigit():
            figures[parts[0]] = parts[-1]
        elif line.startswith("overall_f1="):
            figures["overall"] = line.split("=", 1)[1]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="`calls eval --out` folders (each holds eval.db)")
    parser.add_argument("--set", type=Path, default=ROOT.parent / "shared" / "calls-dev", help="the calls set")
    args = parser.parse_args()
    for run in args.runs:
        out = run / "regrounded.jsonl"
        calls = reground(run, out)
        before, after = score(args.set, run / "predictions.jsonl"), score(args.set, out)
        print(f"## {run} ({calls} calls): F1 as run / re-grounded with this checkout")
        for name in after:
            print(f"{name:24} {before.get(name, '-'):>7} {after[name]:>7}")


if __name__ == "__main__":
    main()
