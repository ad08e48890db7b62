"""Do the same recordings give the same transcripts on every CPU? int8 against float32, under each matrix kernel.

    .venv/bin/python bench/speech_kernels.py --audio /work/eval/audio        # calls-dev's 12 calls, ~10 minutes
    .venv/bin/python bench/speech_kernels.py --audio DIR --quick              # 2 calls, one kernel besides

CTranslate2 multiplies with Intel MKL on Intel CPUs and with oneDNN elsewhere, and oneDNN picks its kernels by the
CPU's instruction set (AVX-512 VNNI, AVX2, ...). A Whisper beam search is sensitive to the last digits of its
scores, so a small numeric difference can send it down another path: the same recording heard otherwise on
another machine, and every figure measured from those transcripts with it. This runs the gateway's local speech
(tiny.en, `speech:` defaults, one thread) on a calls-dev style set in a process of its own per compute type and
kernel, the kernel chosen by environment (KERNELS: CTranslate2's `CT2_USE_MKL`, oneDNN's `ONEDNN_MAX_CPU_ISA`),
each recording primed with its vocabulary (`<recording>.vocabulary.txt`, as `calls` does), and reports per compute
type: the word error rate against the scripts' turns, the seconds, and how many transcripts are word for word
the ones the machine's default kernel gave. Saved as bench/results/speech-kernels-<timestamp>.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

# Each kernel as the environment that selects it; "default" is whatever this machine picks by itself.
KERNELS: dict[str, dict[str, str]] = {
    "default": {},
    "mkl": {"CT2_USE_MKL": "1"},
    "onednn": {"CT2_USE_MKL": "0"},
    "onednn-avx2": {"CT2_USE_MKL": "0", "ONEDNN_MAX_CPU_ISA": "AVX2"},
}
COMPUTE_TYPES = ("int8", "float32")
_SELECTORS = ("CT2_USE_MKL", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "CT2_FORCE_CPU_ISA")


def child(compute_type: str, audio: Path, calls: Path, limit: int | None) -> dict[str, Any]:
    """Transcribe each recording in this process; its transcripts, word error rates and seconds."""
    from aoai_gateway.calls.models import ModelClient
    from aoai_gateway.calls.vocabulary import prompt_text
    from aoai_gateway.config.loader import load_settings
    from aoai_gateway.speech.wer import normalise, word_error_rate

    config = (
        "deployments:\n  - model: whisper-local\n    provider: local\n"
        f"speech:\n  cpu_threads: 1\n  compute_type: {compute_type}\n"
    )

    async def run() -> dict[str, Any]:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
            file.write(config)
            file.flush()
            settings = load_settings(file.name, environ={})
        client = await ModelClient.in_process(settings, None)
        heard: dict[str, str] = {}
        errors = words = 0.0
        started = time.perf_counter()
        try:
            for script in sorted(calls.glob("*.json"))[:limit]:
                call = json.loads(script.read_text(encoding="utf-8"))
                recording = audio / f"{call['id']}.wav"
                sidecar = recording.with_name(recording.name + ".vocabulary.txt")
                names = sidecar.read_text(encoding="utf-8").splitlines() if sidecar.is_file() else []
                prompt = prompt_text([name for name in names if name.strip()])
                transcript = await client.transcribe(recording, "whisper-local", "en", prompt=prompt)
                spoken = " ".join(turn["text"] for turn in call["turns"])
                size = len(normalise(spoken))
                errors += word_error_rate(spoken, transcript.text) * size
                words += size
                heard[call["id"]] = transcript.text
        finally:
            await client.aclose()
        return {"heard": heard, "wer": errors / max(words, 1), "seconds": time.perf_counter() - started}

    return asyncio.run(run())


def measure(compute_type: str, kernel: str, args: argparse.Namespace) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in _SELECTORS} | KERNELS[kernel]
    command = [sys.executable, __file__, "--child", compute_type, "--audio", str(args.audio), "--set", str(args.set)]
    if args.quick:
        command.append("--quick")
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{compute_type} under {kernel}: exit {done.returncode}\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def report(runs: dict[str, dict[str, dict[str, Any]]]) -> str:
    lines = [
        "| compute type | kernel | WER | seconds | transcripts as the default kernel's |",
        "| --- | --- | --: | --: | --: |",
    ]
    for compute_type, kernels in runs.items():
        reference = kernels["default"]["heard"]
        for kernel, run in kernels.items():
            same = sum(run["heard"].get(call) == text for call, text in reference.items())
            lines.append(
                f"| {compute_type} | {kernel} | {run['wer']:.4f} | {run['seconds']:.0f} | {same}/{len(reference)} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", type=Path, required=True, help="the set's recordings, <id>.wav")
    parser.add_argument("--set", type=Path, default=ROOT.parent / "shared" / "calls-dev", help="calls-dev folder")
    parser.add_argument("--quick", action="store_true", help="2 recordings, the default kernel and one other")
    parser.add_argument("--child", choices=COMPUTE_TYPES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    limit = 2 if args.quick else None
    if args.child:
        print(json.dumps(child(args.child, args.audio, args.set / "calls", limit)))
        return
    kernels = ["default", "onednn-avx2"] if args.quick else list(KERNELS)
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    for compute_type in COMPUTE_TYPES:
        runs[compute_type] = {}
        for kernel in kernels:
            print(f"{compute_type} under {kernel} ...", file=sys.stderr, flush=True)
            runs[compute_type][kernel] = measure(compute_type, kernel, args)
    table = report(runs)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = ROOT / "bench" / "results" / f"speech-kernels-{stamp}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# Transcripts under each kernel ({stamp})\n\n{table}\n", encoding="utf-8")
    print(table)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
