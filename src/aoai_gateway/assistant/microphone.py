"""Recording the user from this machine's microphone, for `aoai-gateway assistant --mic`, with ffmpeg.

    audio = await record("auto", seconds=8.0, stop=enter_pressed)     # WAV bytes, 16 kHz mono

ffmpeg runs as its own process (the gateway links no audio-device library, and the event loop never waits on a
device): the default PulseAudio source first, then the default ALSA device. `--mic-device FORMAT:INPUT` names any
other ffmpeg input instead (`alsa:hw:1`, `pulse:alsa_input.usb-...`, `avfoundation::0` on a Mac, or
`lavfi:amovie=command.wav`, a file played as if it were said). The recording ends after `seconds`, when `stop` is
set (Enter on a terminal: ffmpeg is interrupted and closes the file properly), or when the input ends. Without
ffmpeg, or with no input that opens, `MicrophoneUnavailable` says what was tried and what to do instead.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import signal
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

from ..errors import MicrophoneUnavailable

__all__ = ["AUTO", "Source", "record", "sources"]

# What "auto" tries, in order: PulseAudio (and PipeWire's Pulse server) knows the desktop's chosen microphone;
# ALSA's default device is the fallback on machines without a sound server.
AUTO = (("pulse", "default"), ("alsa", "default"))
_SAMPLE_RATE = 16_000
_STOP_GRACE_S = 10.0


@dataclass(frozen=True, slots=True)
class Source:
    format: str
    input: str

    def __str__(self) -> str:
        return f"{self.format}:{self.input}"


def sources(device: str) -> list[Source]:
    """`sources("auto")` -> the AUTO list; `sources("alsa:hw:1")` -> [Source("alsa", "hw:1")]."""
    if device == "auto":
        return [Source(kind, name) for kind, name in AUTO]
    kind, sep, name = device.partition(":")
    if not sep or not kind or not name:
        raise MicrophoneUnavailable(
            device, message=f"--mic-device takes FORMAT:INPUT (an ffmpeg input such as alsa:default), not {device!r}."
        )
    return [Source(kind, name)]


async def record(device: str, seconds: float, stop: asyncio.Event | None = None) -> bytes:
    """A WAV recording from the first source that opens; `MicrophoneUnavailable` when none does."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise MicrophoneUnavailable(
            "ffmpeg",
            message="Recording from the microphone needs ffmpeg on the PATH (apt-get install ffmpeg, "
            "brew install ffmpeg); or record elsewhere and pass --file RECORDING.",
        )
    tried: list[str] = []
    for source in sources(device):
        audio, problem = await _record_from(ffmpeg, source, seconds, stop)
        if audio is not None:
            return audio
        tried.append(f"{source} ({problem})")
    raise MicrophoneUnavailable(
        "; ".join(tried),
        message=f"No microphone could be opened: tried {'; '.join(tried)}. Name an input with "
        "--mic-device FORMAT:INPUT, or pass --file RECORDING.",
    )


async def _record_from(
    ffmpeg: str, source: Source, seconds: float, stop: asyncio.Event | None
) -> tuple[bytes | None, str]:
    with tempfile.TemporaryDirectory(prefix="aoai-mic-") as folder:
        out = Path(folder) / "microphone.wav"
        command = [
            ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
            "-f", source.format, "-i", source.input,
            "-t", f"{seconds:g}", "-ac", "1", "-ar", str(_SAMPLE_RATE), "-y", str(out),
        ]  # fmt: skip
        quiet = asyncio.subprocess.DEVNULL
        process = await asyncio.create_subprocess_exec(
            *command, stdin=quiet, stdout=quiet, stderr=asyncio.subprocess.PIPE
        )
        assert process.stderr is not None
        errors = asyncio.ensure_future(process.stderr.read())  # read alongside: a full pipe would stall ffmpeg
        finished = asyncio.ensure_future(process.wait())
        stopped = asyncio.ensure_future(stop.wait()) if stop is not None else None
        try:
            waits = [task for task in (finished, stopped) if task is not None]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if not finished.done():
                process.send_signal(signal.SIGINT)  # ffmpeg ends the file properly on an interrupt
                try:
                    await asyncio.wait_for(asyncio.shield(finished), _STOP_GRACE_S)
                except TimeoutError:
                    process.kill()
                    await finished
        finally:
            if stopped is not None:
                stopped.cancel()
            if process.returncode is None:
                process.kill()
                await finished
        message = (await errors).decode("utf-8", "replace").strip().splitlines()
        audio = await asyncio.to_thread(_frames, out)
        if audio is None:
            return None, message[-1] if message else f"ffmpeg exited with status {process.returncode}"
        return audio, ""


def _frames(path: Path) -> bytes | None:
    """The recording, if ffmpeg wrote one with any sound in it."""
    try:
        data = path.read_bytes()
        with wave.open(io.BytesIO(data)) as reader:
            return data if reader.getnframes() > 0 else None
    except (OSError, wave.Error, EOFError):
        return None
