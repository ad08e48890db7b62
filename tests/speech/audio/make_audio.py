"""Render the test recordings in this folder from `texts.json` with espeak-ng, in several containers.

    python tests/speech/audio/make_audio.py      # needs espeak-ng (apt-get install -y espeak-ng) and PyAV

Each entry of texts.json names its file, the text spoken and the espeak-ng voice; the file's extension picks
the container and codec (PCM WAV, MP3, Opus in Ogg and WebM, FLAC, AAC in MP4/M4A). Sample rates vary on
purpose (16, 22.05, 24 and 48 kHz), so the gateway's resampling is exercised too. Reruns give the same audio.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import wave
from pathlib import Path

import av
import numpy as np

HERE = Path(__file__).parent
# extension -> (container format, codec, sample rate)
CODECS = {
    ".wav": ("wav", "pcm_s16le", 16000),
    ".mp3": ("mp3", "libmp3lame", 22050),
    ".ogg": ("ogg", "libopus", 48000),
    ".webm": ("webm", "libopus", 24000),
    ".flac": ("flac", "flac", 22050),
    ".m4a": ("ipod", "aac", 16000),
    ".mp4": ("mp4", "aac", 22050),
}


def speak(text: str, voice: str, speed: int) -> tuple[np.ndarray, int]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "out.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True)
        with wave.open(str(path)) as w:
            return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16), w.getframerate()


def encode(samples: np.ndarray, rate: int, path: Path) -> None:
    container_format, codec, out_rate = CODECS[path.suffix]
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=out_rate, layout="mono")
        if codec == "libmp3lame":
            stream.bit_rate = 48_000
        elif codec in ("aac", "libopus"):
            stream.bit_rate = 32_000
        resampler = av.AudioResampler(format=stream.format, layout="mono", rate=out_rate)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = 0
        for chunk in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(chunk):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def main() -> None:
    for entry in json.loads((HERE / "texts.json").read_text()):
        samples, rate = speak(entry["text"], entry.get("voice", "en-us"), entry.get("speed", 150))
        # Half a second of silence each side, as a recording would have.
        pad = np.zeros(rate // 2, dtype=np.int16)
        encode(np.concatenate([pad, samples, pad]), rate, HERE / entry["file"])
        print(f"{entry['file']}: {(len(samples) + 2 * len(pad)) / rate:.1f} s")


if __name__ == "__main__":
    main()
