"""A tiny multilingual faster-whisper model, written at test time: no torch, no download.

path = build_multilingual_model(tmp_path)      # model.bin, config.json, vocabulary.json, tokenizer.json
WhisperModel(str(path)).model.is_multilingual   # True: 99 languages, translate and transcribe

The bundled tiny.en refuses every multilingual request, so without a multilingual model the translate task,
language detection and the `language` parameter would go untested. This model has the token layout of
Systran/faster-whisper-base (checked against its vocabulary, tokenizer.json and config.json): 50257 text tokens,
the last of them the empty string, then <|endoftext|> (50257), <|startoftranscript|>, the 99 language tokens
from <|en|> (50259) on, <|translate|>, <|transcribe|>, <|startoflm|>, <|startofprev|>, <|nocaptions|>,
<|notimestamps|> (50363) and 1501 timestamps: 51865 in all. Its text tokens are tiny.en's BPE (the real one
was trained on more languages); its network is CTranslate2's Whisper at d_model 64 with seeded random weights.

Random weights would decode random tokens until the length limit, so the decoder's output is steered through
its position embeddings: at the position where Whisper predicts the language it always says <|de|> (every
recording "is" German), the positions after the four-token prompt spell `SENTENCE`, and every later one ends
the text. The encoder and the decoder layers still compute on the audio (their random output, small next to
the steering, cannot change a decision). So language detection answers `HEARD_LANGUAGE`, and every window
decodes to the sentence whatever the task or the language asked for: tests check shapes and behaviour, not
words. A prompt (`initial_prompt`) in front shifts the positions: the sentence comes out cut short or empty.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import tokenizers
from ctranslate2.specs import common_spec, transformer_spec, whisper_spec  # type: ignore[import-untyped]

from aoai_gateway.config.speech import bundled_model_path
from aoai_gateway.speech.languages import LANGUAGES

HEARD_LANGUAGE = "de"
SENTENCE = " Guten Tag, hier spricht ein kleines Modell."
MODEL_LANGUAGES = list(LANGUAGES)[:99]  # all but yue (cantonese), which only large-v3 knows

TEXT_TOKENS = 50257  # tiny.en's English BPE has 50256, then <|endoftext|>
# The multilingual BPE's last text token is the empty string. CTranslate2 (4.8) calls a Whisper model
# multilingual when its vocabulary holds that token, which also puts the special tokens on multilingual ids.
EMPTY_TEXT_TOKEN = ""
SPECIALS = [
    "<|endoftext|>",
    "<|startoftranscript|>",
    *(f"<|{code}|>" for code in MODEL_LANGUAGES),
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nocaptions|>",
    "<|notimestamps|>",
]
TIMESTAMPS = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
VOCABULARY_SIZE = TEXT_TOKENS + len(SPECIALS) + len(TIMESTAMPS)

D_MODEL, FFN, HEADS, LAYERS, MELS = 64, 256, 2, 2, 80
SOURCE_POSITIONS, TARGET_POSITIONS = 1500, 448
_STEER = 10.0  # a steering position embedding's size; the layers add about 0.05 per dimension
_PICK = 2.0  # projection weight of a steered token: its logit comes out near 16, every other within 0.5 of 0
_SEED = 20240607

Array = npt.NDArray[np.float32]


def build_multilingual_model(directory: Path) -> Path:
    """Write the model into `directory` (created if needed) and return it: about a second, 16 MB."""
    directory.mkdir(parents=True, exist_ok=True)
    english = Path(bundled_model_path())
    tokenizer = _tokenizer(json.loads((english / "tokenizer.json").read_text("utf-8")))
    vocabulary = _vocabulary(tokenizer)
    ids = {token: index for index, token in enumerate(vocabulary)}
    assert len(ids) == VOCABULARY_SIZE == 51865
    spoken = tokenizers.Tokenizer.from_str(json.dumps(tokenizer)).encode(SENTENCE, add_special_tokens=False).ids

    spec = whisper_spec.WhisperSpec(LAYERS, HEADS, LAYERS, HEADS)
    random = np.random.default_rng(_SEED)
    _fill_encoder(spec.encoder, random)
    _fill_decoder(spec.decoder, random, [ids[f"<|{HEARD_LANGUAGE}|>"], *spoken], end=ids["<|endoftext|>"])
    spec.register_vocabulary(vocabulary)
    english_config = json.loads((english / "config.json").read_text("utf-8"))
    spec.config.lang_ids = [ids[f"<|{code}|>"] for code in MODEL_LANGUAGES]
    spec.config.suppress_ids = [_multilingual_id(i) for i in english_config["suppress_ids"]]
    spec.config.suppress_ids_begin = [_multilingual_id(i) for i in english_config["suppress_ids_begin"]]
    spec.config.alignment_heads = [[LAYERS - 1, head] for head in range(HEADS)]  # the last half, as converters do
    spec.validate()
    spec.optimize(quantization="float16")
    spec.save(str(directory))
    (directory / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False), "utf-8")
    preprocessor = english / "preprocessor_config.json"
    if preprocessor.is_file():  # (tiny.en's bundle has none: faster-whisper's defaults, 80 mel bins, apply)
        shutil.copyfile(preprocessor, directory / "preprocessor_config.json")
    return directory


def _tokenizer(english: dict[str, Any]) -> dict[str, Any]:
    """tiny.en's tokenizer.json with the empty text token added: its special tokens move up by one."""
    vocab = {token: index for token, index in english["model"]["vocab"].items() if index < TEXT_TOKENS - 1}
    assert len(vocab) == TEXT_TOKENS - 1 and EMPTY_TEXT_TOKEN not in vocab
    vocab[EMPTY_TEXT_TOKEN] = TEXT_TOKENS - 1
    vocab["<|endoftext|>"] = TEXT_TOKENS
    template = next(added for added in english["added_tokens"] if added["content"] == "<|endoftext|>")
    added = [{**template, "id": TEXT_TOKENS + i, "content": token} for i, token in enumerate(SPECIALS)]
    post_processor = json.loads(json.dumps(english["post_processor"]))
    for token, special in post_processor["special_tokens"].items():
        special["ids"] = [TEXT_TOKENS + SPECIALS.index(token)]
    model = {**english["model"], "vocab": vocab}
    return {**english, "added_tokens": added, "post_processor": post_processor, "model": model}


def _vocabulary(tokenizer: dict[str, Any]) -> list[str]:
    by_id = {index: token for token, index in tokenizer["model"]["vocab"].items() if index < TEXT_TOKENS}
    return [by_id[i] for i in range(TEXT_TOKENS)] + SPECIALS + TIMESTAMPS


def _multilingual_id(english_id: int) -> int:
    return english_id if english_id < TEXT_TOKENS - 1 else english_id + 1


def _fill_encoder(spec: whisper_spec.WhisperEncoderSpec, random: np.random.Generator) -> None:
    spec.conv1.weight = _normal(random, D_MODEL, MELS, 3)
    spec.conv1.bias = _normal(random, D_MODEL)
    spec.conv2.weight = _normal(random, D_MODEL, D_MODEL, 3)
    spec.conv2.bias = _normal(random, D_MODEL)
    spec.position_encodings.encodings = _normal(random, SOURCE_POSITIONS, D_MODEL)
    _fill_norm(spec.layer_norm)
    for layer in spec.layer:
        _fill_attention(layer.self_attention, random, self_attention=True)
        _fill_feed_forward(layer.ffn, random)


def _fill_decoder(
    spec: transformer_spec.TransformerDecoderSpec, random: np.random.Generator, said: list[int], *, end: int
) -> None:
    """Position p says `slots[p]`: the language at 0 (after <|startoftranscript|>), the first text token at 3
    (after <|notimestamps|>), the end everywhere past the sentence."""
    language, *text = said
    slots = [language, end, end, *text, end]
    assert len(slots) <= D_MODEL  # each slot steers along a dimension of its own
    positions = _normal(random, TARGET_POSITIONS, D_MODEL)
    for position in range(TARGET_POSITIONS):
        positions[position, min(position, len(slots) - 1)] += _STEER
    projection = _normal(random, VOCABULARY_SIZE, D_MODEL, scale=0.01)  # no all-zero row: int8 scales stay finite
    for slot, token in enumerate(slots):
        projection[token, slot] += _PICK
    spec.embeddings.weight = _normal(random, VOCABULARY_SIZE, D_MODEL)
    spec.position_encodings.encodings = positions
    spec.projection.weight = projection
    _fill_norm(spec.layer_norm)
    for layer in spec.layer:
        _fill_attention(layer.self_attention, random, self_attention=True)
        _fill_attention(layer.attention, random, self_attention=False)
        _fill_feed_forward(layer.ffn, random)


def _fill_attention(spec: Any, random: np.random.Generator, *, self_attention: bool) -> None:
    _fill_norm(spec.layer_norm)
    # Self-attention: fused queries-keys-values, then the output; cross-attention: queries, fused keys-values,
    # then the output (CTranslate2 keeps them fused as the converters write them).
    rows = [3 * D_MODEL, D_MODEL] if self_attention else [D_MODEL, 2 * D_MODEL, D_MODEL]
    for linear, size in zip(spec.linear, rows, strict=True):
        _fill_linear(linear, random, size, D_MODEL)


def _fill_feed_forward(spec: transformer_spec.FeedForwardSpec, random: np.random.Generator) -> None:
    _fill_norm(spec.layer_norm)
    _fill_linear(spec.linear_0, random, FFN, D_MODEL)
    _fill_linear(spec.linear_1, random, D_MODEL, FFN)


def _fill_linear(spec: common_spec.LinearSpec, random: np.random.Generator, rows: int, columns: int) -> None:
    spec.weight = _normal(random, rows, columns)
    spec.bias = _normal(random, rows)


def _fill_norm(spec: common_spec.LayerNormSpec) -> None:
    spec.gamma = np.ones(D_MODEL, dtype=np.float32)
    spec.beta = np.zeros(D_MODEL, dtype=np.float32)


def _normal(random: np.random.Generator, *shape: int, scale: float = 0.02) -> Array:
    return random.standard_normal(shape, dtype=np.float32) * np.float32(scale)
