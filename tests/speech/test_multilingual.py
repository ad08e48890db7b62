"""Translation, language detection and the `language` parameter through the gateway, on a multilingual model.

The model is written at test time (multilingual.py): Whisper's multilingual vocabulary and architecture with
random weights steered so that every recording "is" German (`HEARD_LANGUAGE`) and every window says one
sentence. What is checked is the gateway around it: the task that reaches the model, the language the answer
names, status codes and response shapes. The gateway tests run twice: with voice detection and batched
windows (the default), and with faster-whisper's sequential decoding (`speech.vad: false`), two separate paths
to the model.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from faster_whisper import WhisperModel
from openai import OpenAI
from openai.types.audio import TranslationVerbose

from aoai_gateway.app import create_app
from aoai_gateway.config import Settings
from aoai_gateway.speech.audio import decode_audio
from aoai_gateway.speech.languages import LANGUAGES

from ..servers import AsgiServer
from .conftest import recording
from .multilingual import HEARD_LANGUAGE, MODEL_LANGUAGES, SENTENCE

MODEL = "whisper-multilingual"
SAID = SENTENCE.split()


@pytest.fixture(scope="module", params=[True, False], ids=["windows", "sequential"])
def multilingual_gateway(request: pytest.FixtureRequest, multilingual_model: Path) -> Iterator[AsgiServer]:
    deployments = [{"model": MODEL, "provider": "local", "model_path": str(multilingual_model)}]
    settings = Settings.model_validate({"deployments": deployments, "speech": {"vad": request.param, "cpu_threads": 1}})
    with AsgiServer(create_app(settings)) as server:
        yield server


@pytest.fixture
def multilingual_client(multilingual_gateway: AsgiServer) -> Iterator[OpenAI]:
    with OpenAI(base_url=f"{multilingual_gateway.url}/v1", api_key="any-key", max_retries=0) as client:
        yield client


def translate(gateway: AsgiServer, name: str, **fields: str) -> httpx.Response:
    # (The SDK marks `audio.translations` deprecated, and warnings fail this suite: plain HTTP here.)
    form: dict[str, tuple[str | None, bytes | str]] = {"file": (name, recording(name)), "model": (None, MODEL)}
    form |= {key: (None, value) for key, value in fields.items()}
    return httpx.post(f"{gateway.url}/v1/audio/translations", files=form, timeout=60)


def seconds(name: str) -> float:
    return len(decode_audio(memoryview(recording(name)))) / 16000


def assert_said(text: str) -> None:
    """The model's sentence: whole, or repeated where a window was decoded again in parts; never empty."""
    words = text.split()
    assert words and set(words) <= set(SAID), text


def test_the_model_is_multilingual_with_the_multilingual_token_ids(multilingual_model: Path) -> None:
    model = WhisperModel(str(multilingual_model), device="cpu", compute_type="int8", cpu_threads=1)
    assert model.model.is_multilingual and model.model.num_languages == len(MODEL_LANGUAGES) == 99
    specials = ("<|endoftext|>", "<|en|>", "<|translate|>", "<|notimestamps|>")
    assert [model.hf_tokenizer.token_to_id(token) for token in specials] == [50257, 50259, 50358, 50363]
    language, probability, _ = model.detect_language(decode_audio(memoryview(recording("report.wav"))))
    assert (language, round(probability, 2)) == (HEARD_LANGUAGE, 1.0)


def test_translation_json(multilingual_gateway: AsgiServer) -> None:
    response = translate(multilingual_gateway, "report.wav")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["text"]  # OpenAI's translation object: no usage, unlike a transcription's
    assert_said(body["text"])


def test_translation_text(multilingual_gateway: AsgiServer) -> None:
    response = translate(multilingual_gateway, "weather.mp3", response_format="text")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.endswith("\n")
    assert_said(response.text)


def test_translation_verbose_json_is_english(multilingual_gateway: AsgiServer) -> None:
    response = translate(multilingual_gateway, "office.ogg", response_format="verbose_json")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task"] == "translate" and "usage" not in body
    result = TranslationVerbose.model_validate(body)
    # The model hears German; a translation's language is the language of its text, English.
    assert result.language == "english"
    assert result.duration == pytest.approx(seconds("office.ogg"), abs=0.01)
    assert_said(result.text)
    assert result.segments
    for segment in result.segments:
        assert 0 <= segment.start < segment.end <= result.duration
        # Text tokens, and with sequential decoding timestamps (50364 on), as whisper-1's segments carry them.
        assert segment.tokens and not [t for t in segment.tokens if 50257 <= t < 50364], "no special token"


@pytest.mark.parametrize(("code", "name"), [("fr", "french"), ("FR", "french"), ("en", "english"), ("haw", "hawaiian")])
def test_the_language_parameter_is_honoured(multilingual_client: OpenAI, code: str, name: str) -> None:
    result = multilingual_client.audio.transcriptions.create(
        model=MODEL, file=("market.flac", recording("market.flac")), language=code, response_format="verbose_json"
    )
    assert result.language == name
    assert result.duration == pytest.approx(seconds("market.flac"), abs=0.01)
    assert result.usage is not None and result.usage.seconds == math.ceil(result.duration)
    assert_said(result.text)


@pytest.mark.parametrize("name", ["report.wav", "train.webm", "garden.mp4"])
def test_the_language_is_detected_without_the_parameter(multilingual_client: OpenAI, name: str) -> None:
    result = multilingual_client.audio.transcriptions.create(
        model=MODEL, file=(name, recording(name)), response_format="verbose_json"
    )
    assert result.language == LANGUAGES[HEARD_LANGUAGE] == "german"  # detected: English would be the fallback
    assert result.duration == pytest.approx(seconds(name), abs=0.01)
    assert_said(result.text)


def test_words_and_segments_in_a_detected_language(multilingual_client: OpenAI) -> None:
    result = multilingual_client.audio.transcriptions.create(
        model=MODEL,
        file=("meeting.m4a", recording("meeting.m4a")),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert result.language == "german"
    assert result.words and result.segments
    assert_said(" ".join(word.word for word in result.words))
    starts = [word.start for word in result.words]
    assert starts == sorted(starts) and all(0 <= w.start <= w.end <= result.duration for w in result.words)


def test_a_stream_with_a_detected_language(multilingual_client: OpenAI) -> None:
    events = list(
        multilingual_client.audio.transcriptions.create(
            model=MODEL, file=("report.wav", recording("report.wav")), stream=True
        )
    )
    done = events[-1]
    assert done.type == "transcript.text.done"
    assert "".join(e.delta for e in events if e.type == "transcript.text.delta").strip() == done.text
    assert_said(done.text)


@pytest.mark.parametrize("code", ["xx", "german", "de-DE", "zz-top"])
def test_an_unknown_language_code_is_a_400(multilingual_client: OpenAI, code: str) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        multilingual_client.audio.transcriptions.create(
            model=MODEL, file=("report.wav", recording("report.wav")), language=code
        )
    body = raised.value.body
    assert isinstance(body, dict), body
    assert body["type"] == "invalid_request_error" and body["param"] == "language"
    assert body["code"] == "invalid_language_format" and "ISO-639-1" in body["message"]


def test_a_language_the_model_does_not_know_is_a_400(multilingual_client: OpenAI) -> None:
    # Cantonese came with large-v3; this model, like tiny to large-v2, knows the other 99.
    assert "yue" in LANGUAGES and "yue" not in MODEL_LANGUAGES
    with pytest.raises(openai.BadRequestError) as raised:
        multilingual_client.audio.transcriptions.create(
            model=MODEL, file=("report.wav", recording("report.wav")), language="yue"
        )
    body = raised.value.body
    assert isinstance(body, dict) and body["param"] == "language" and body["code"] == "unsupported_language"
    assert "'yue' (cantonese)" in body["message"] and "99 languages" in body["message"]
