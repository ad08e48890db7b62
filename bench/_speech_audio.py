"""Test calls for the speech benchmark: the scripted sales calls of calls-dev, voiced with espeak-ng.

call = voice_call(calls_dir, seconds=600, cache=Path("bench/results/speech-audio"))
call.path, call.seconds, call.text          # a 16 kHz mono WAV, its length, the words spoken

Turns are voiced exactly as calls-dev's generate_audio.py voices them (its own functions: the same espeak-ng
voices per call, the same trimming, pauses and peak level), one call after another, and stop at the first turn
boundary past `seconds`: the reference text is then exactly what was said. Files are cached by their length.
"""

from __future__ import annotations

import array
import importlib.util
import json
import random
import shutil
import sys
import wave
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

RATE = 16_000


@dataclass(frozen=True)
class VoicedCall:
    path: Path
    seconds: float
    text: str


def _generator(calls_dir: Path) -> ModuleType:
    script = calls_dir.parent / "generate_audio.py"
    spec = importlib.util.spec_from_file_location("calls_generate_audio", script)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{script} is missing: the benchmark voices calls with calls-dev's generator")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def voice_call(calls_dir: Path, seconds: float, cache: Path) -> VoicedCall:
    """A recording of at least `seconds` (whole turns), made once and cached."""
    wav, meta = cache / f"call-{int(seconds)}s.wav", cache / f"call-{int(seconds)}s.json"
    if wav.exists() and meta.exists():
        info = json.loads(meta.read_text())
        return VoicedCall(wav, info["seconds"], info["text"])
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise SystemExit("espeak-ng is needed to voice the calls: apt-get install -y espeak-ng")
    gen = _generator(calls_dir)
    samples: array.array[int] = array.array("h")
    spoken: list[str] = []
    for script in sorted(calls_dir.glob("*.json")):
        call = json.loads(script.read_text())
        agent, customer = gen.pick_voices(call["id"], call.get("speaker_gender"))
        rng = random.Random(call["id"])
        for n, turn in enumerate(call["turns"]):
            voice = agent if turn["speaker"] == "agent" else customer
            audio, rate = gen.synthesize(turn["text"], voice, espeak)
            audio = gen.trim_silence(audio, rate)
            if rate != RATE:
                audio = gen.resample_numpy(audio, rate, RATE)
            gap = gen.LEAD_S if n == 0 else rng.uniform(*gen.GAP_RANGE_S)
            samples.extend(array.array("h", bytes(2 * int(gap * RATE))))
            samples.extend(gen.normalize_peak(audio))
            spoken.append(turn["text"])
            if len(samples) >= seconds * RATE:
                break
        if len(samples) >= seconds * RATE:
            break
        samples.extend(array.array("h", bytes(2 * int(gen.TAIL_S * RATE))))
    samples.extend(array.array("h", bytes(2 * int(gen.TAIL_S * RATE))))
    cache.mkdir(parents=True, exist_ok=True)
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.tobytes())
    result = VoicedCall(wav, len(samples) / RATE, " ".join(spoken))
    meta.write_text(json.dumps({"seconds": result.seconds, "text": result.text}))
    return result
