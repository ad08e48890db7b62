"""Uploaded audio decoded in-process by PyAV (FFmpeg's libraries, bundled in its wheels) to 16 kHz mono floats.

samples = decode_audio(memoryview(body)[start:end])   # np.float32 array; InvalidRequest when unusable

Any container and codec FFmpeg reads works (flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav, webm and more); no
ffmpeg binary is needed. The upload is read where it lies (in memory, or the mapped temporary file of a large
upload), never copied whole; the decoded samples of a recording longer than ten minutes (64 kB a second) go to
an anonymous temporary file as they come and are mapped back, so an hour's call holds page cache that the
system can reclaim, not 230 MB of the process's own memory. Unusable input is refused before any
transcription starts, with OpenAI's 400: empty files, files FFmpeg cannot read, files without an audio stream,
audio shorter than OpenAI's 0.1 s minimum, and truncated files (fewer samples than the container's header
declares).
"""

from __future__ import annotations

import io
import logging
import mmap
import tempfile
from typing import IO

import av
import numpy as np
import numpy.typing as npt

from ..errors import InvalidRequest

log = logging.getLogger("aoai_gateway.speech")

SAMPLE_RATE = 16_000
MIN_SECONDS = 0.1
# A file whose header promises more than this much audio beyond what decodes is truncated: rounding of
# frame sizes and encoder padding stay far below it.
_TRUNCATION_SLACK_SECONDS = 0.5
_TRUNCATION_SLACK_RATIO = 0.02
# Decoded audio past this many samples (ten minutes) is spooled to a temporary file instead of held.
IN_MEMORY_SAMPLES = 600 * SAMPLE_RATE

Samples = npt.NDArray[np.float32]


def decode_audio(data: memoryview) -> Samples:
    """The whole audio track as float32 samples in [-1, 1] at 16 kHz, mono."""
    if len(data) == 0:
        raise _unusable("The audio file is empty.")
    if _cut_short(data):
        raise _unusable("Audio file is truncated: it ends before its last chunk does. Upload the complete file.")
    try:
        with av.open(_ViewReader(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise _unusable("The uploaded file has no audio track.")
            stream = container.streams.audio[0]
            declared = _declared_seconds(container, stream)
            with _Samples() as collected:
                skipped = _decode(container, stream, collected)
                samples = collected.array()
    except av.FFmpegError as exc:
        # The one place PyAV's errors become ours; the message never quotes the upload.
        log.info("undecodable upload: %s", type(exc).__name__)
        raise _unusable("Audio file might be corrupted or unsupported.") from None
    seconds = len(samples) / SAMPLE_RATE
    if seconds < MIN_SECONDS:
        raise _unusable(f"Audio file is too short. Minimum audio length is {MIN_SECONDS} seconds.")
    if declared is not None and declared - seconds > max(_TRUNCATION_SLACK_SECONDS, declared * _TRUNCATION_SLACK_RATIO):
        raise _unusable(
            f"Audio file is truncated: its header declares {declared:.1f} s of audio but only {seconds:.1f} s "
            "could be read. Upload the complete file."
        )
    if skipped:
        log.info("skipped %d undecodable packets in an upload", skipped)
    return samples


def _decode(container: av.container.InputContainer, stream: av.AudioStream, out: _Samples) -> int:
    """Every frame of `stream` resampled into `out`; the number of damaged packets skipped."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    skipped = 0
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            # One damaged packet should not cost the whole file; a truncated tail is caught by the length check.
            skipped += 1
            continue
        for frame in frames:
            for resampled in resampler.resample(frame):
                out.add(resampled.to_ndarray()[0])
    for resampled in resampler.resample(None):
        out.add(resampled.to_ndarray()[0])
    return skipped


class _Samples:
    """Decoded pieces gathered in memory up to `IN_MEMORY_SAMPLES`, then in an anonymous temporary file."""

    def __init__(self) -> None:
        self._pieces: list[Samples] = []
        self._count = 0
        self._spool: IO[bytes] | None = None

    def __enter__(self) -> _Samples:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._spool is not None:
            self._spool.close()  # a mapping made by `array` keeps the file's pages alive

    def add(self, piece: Samples) -> None:
        self._count += len(piece)
        if self._spool is None and self._count > IN_MEMORY_SAMPLES:
            self._spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed by __exit__)
            self._spool.writelines(p.data for p in self._pieces)
            self._pieces = []
        if self._spool is not None:
            self._spool.write(piece.data)
        else:
            self._pieces.append(piece)

    def array(self) -> Samples:
        if self._spool is None:
            return np.concatenate(self._pieces) if self._pieces else np.zeros(0, dtype=np.float32)
        self._spool.flush()
        mapped = mmap.mmap(self._spool.fileno(), 0, access=mmap.ACCESS_READ)
        return np.frombuffer(mapped, dtype=np.float32)


def _declared_seconds(container: av.container.InputContainer, stream: av.AudioStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _cut_short(data: memoryview) -> bool:
    """WAV and Ogg files cut short, which FFmpeg reads without complaint as shorter recordings.

    Other containers declare their length (FLAC, MP4, WebM, MP3 with a Xing header: see the duration check)
    or cannot tell (a constant-bitrate MP3 cut at a frame boundary is a valid, shorter MP3).
    """
    head = bytes(data[:12])
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        position = 12
        while position + 8 <= len(data):
            chunk = bytes(data[position : position + 4])
            size = int.from_bytes(data[position + 4 : position + 8], "little")
            if chunk == b"data":
                # 0 and 0xFFFFFFFF mark a WAV written as a stream, whose length was never filled in.
                return size not in (0, 0xFFFFFFFF) and position + 8 + size > len(data)
            position += 8 + size + (size & 1)
        return False
    if head[:4] == b"OggS":
        tail = bytes(data[-65536:])  # an Ogg page is at most 65,307 bytes
        page = tail[tail.rfind(b"OggS") :]
        if len(page) < 27 or len(page) < 27 + page[26]:
            return True
        body = sum(page[27 : 27 + page[26]])
        # The final page carries the end-of-stream flag and all of its segments.
        return not page[5] & 0x04 or 27 + page[26] + body > len(page)
    return False


def _unusable(message: str) -> InvalidRequest:
    return InvalidRequest(message, param="file", code="invalid_value")


class _ViewReader(io.RawIOBase):
    """A seekable, read-only file over a memoryview, so PyAV reads the upload in place."""

    def __init__(self, view: memoryview) -> None:
        super().__init__()
        self._view = view
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = max(0, min(len(buffer), len(self._view) - self._position))
        buffer[:n] = self._view[self._position : self._position + n]
        self._position += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self._view)}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position
