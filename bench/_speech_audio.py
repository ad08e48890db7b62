"""Test calls for the speech benchmark: the scripted sales calls of calls-dev, voiced with espeak-ng.

call = voice_call(calls_dir, seconds=600, cache=Path("bench/results/speech-audio"))
call.path, call.seconds, call.text          # a 16 kHz mono WAV, its length, the words spoken
other = voice_call(calls_dir, 600, cache, variant=2)    # another recording: other calls, order and voices

Turns are voiced exactly as calls-dev's generate_audio.py voices them (its own functions: the same espeak-ng
voices per call, the same trimming, pauses and peak level), one call after another, and stop at the first turn
boundary past `seconds`: the reference text is then exactly what was said. Variant 0 takes the scripts in name
order with calls-dev's own voices; variant k > 0 shuffles the scripts with seed k (so the first ten minutes are
other calls, in another order) and picks each call's voices and pauses as generate_audio.py would for the id
"<id>#k" (same genders, often another voice of the pool). Files are cached by their length and variant.
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


def voice_call(calls_dir: Path, seconds: float, cache: Path, variant: int = 0) -> VoicedCall:
    """A recording of at least `seconds` (whole turns), made once and cached."""
    name = f"call-{int(seconds)}s" + (f"-v{variant}" if variant else "")
    wav, meta = cache / f"{name}.wav", cache / f"{name}.json"
    if wav.exists() and meta.exists():
        info = json.loads(meta.read_text())
        return VoicedCall(wav, info["seconds"], info["text"])
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise SystemExit("espeak-ng is needed to voice the calls: apt-get install -y espeak-ng")
    gen = _generator(calls_dir)
    samples: array.array[int] = array.array("h")
    spoken: list[str] = []
    scripts = sorted(calls_dir.glob("*.json"))
    if variant:
        random.Random(variant).shuffle(scripts)
    for script in scripts:
        call = json.loads(script.read_text())
        voiced_as = call["id"] + (f"#{variant}" if variant else "")
        agent, customer = gen.pick_voices(voiced_as, call.get("speaker_gender"))
        rng = random.Random(voiced_as)
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
