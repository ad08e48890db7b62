"""SubRip and WebVTT captions, as OpenAI's audio API returns them (shared by local speech and the emulator).

captions([(0.0, 1.5, "Hello there.")], vtt=True)   # 'WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello there.\n'
"""

from __future__ import annotations

from collections.abc import Iterable


def stamp(seconds: float, *, vtt: bool) -> str:
    """`00:01:02,345` (SRT) or `00:01:02.345` (VTT)."""
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{'.' if vtt else ','}{millis:03d}"


def captions(cues: Iterable[tuple[float, float, str]], *, vtt: bool) -> str:
    """Numbered SRT cues, or a WEBVTT document, one cue per (start, end, text)."""
    blocks = [
        ("" if vtt else f"{index}\n") + f"{stamp(start, vtt=vtt)} --> {stamp(end, vtt=vtt)}\n{text.strip()}\n"
        for index, (start, end, text) in enumerate(cues, 1)
    ]
    return ("WEBVTT\n\n" if vtt else "") + "\n".join(blocks)
