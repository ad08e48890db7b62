"""Settings of the local chat models (`provider: local`, `engine: llama.cpp`) and the check of their GGUF file.

    settings.local_llm.context_tokens     # the context window each model is loaded with
    check_gguf_file("/models/qwen2.5-1.5b-instruct-q4_k_m.gguf")   # ValueError unless it is a GGUF file

Nothing here imports llama.cpp: validating a configuration must stay cheap, and a wrong path must stop start-up
with its reason before any model loads.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

_GGUF_MAGIC = b"GGUF"


class LocalLlmSettings(BaseModel):
    """How local chat models run: one model instance per GGUF file, generating one answer at a time (a llama.cpp
    context is not shared between threads), `queue_size` requests waiting for it, the rest refused with a 429.

    `context_tokens` is the context window (prompt plus answer; 0: the model's trained length); `cpu_threads` at 0
    uses every core; `batch_tokens` is how many prompt tokens one forward pass reads. `jump_forward` writes what a
    strict JSON Schema leaves no choice about (braces, keys, commas) without sampling it, evaluated as one batch
    (llm/lookahead.py): answers 1.13x sooner on the calls pipeline's requests, but greedy answers then differ a
    little (the forced text's token boundaries are not always the model's own), and the calls fields measured a
    little lower with it (bench/README.md), so it is off unless asked for.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    context_tokens: int = Field(4096, ge=0)
    batch_tokens: int = Field(512, ge=1)
    cpu_threads: int = Field(0, ge=0)
    queue_size: int = Field(8, ge=0)
    jump_forward: bool = False


def check_gguf_file(path: str | None) -> str:
    """`path` as given when it names a readable GGUF file; ValueError saying what is wrong otherwise."""
    if not path:
        raise ValueError("engine: llama.cpp needs model_path: the GGUF file of the model (nothing is downloaded)")
    file = Path(path).expanduser()
    if not file.is_file():
        raise ValueError(f"model_path {path!r} is not a file; point it at a GGUF model file (e.g. model.Q4_K_M.gguf)")
    try:
        with file.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ValueError(f"model_path {path!r} cannot be read: {exc.strerror}") from None
    if magic != _GGUF_MAGIC:
        raise ValueError(f"model_path {path!r} is not a GGUF file (llama.cpp's format; convert the model to GGUF)")
    return str(file)
