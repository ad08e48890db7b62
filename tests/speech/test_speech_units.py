"""The pieces on their own: windows at pauses, spooled bodies, the settings of local deployments, decoded audio
spooled to a file, word error rate."""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np
import pytest

from aoai_gateway.config import ConfigError, load_settings
from aoai_gateway.config.speech import bundled_model_path
from aoai_gateway.errors import PayloadTooLarge
from aoai_gateway.http.asgi import Message
from aoai_gateway.http.multipart import MultipartForm
from aoai_gateway.http.request import Request
from aoai_gateway.http.spool import read_spooled
from aoai_gateway.speech import audio
from aoai_gateway.speech.audio import decode_audio
from aoai_gateway.speech.gaps import gap_clip, splice, uncovered
from aoai_gateway.speech.pool import pool_size
from aoai_gateway.speech.transcript import Word
from aoai_gateway.speech.wer import word_error_rate
from aoai_gateway.speech.windows import SAMPLE_RATE, Window, plan_windows, split

from .conftest import recording

S = SAMPLE_RATE


def test_windows_take_runs_of_speech_up_to_30_seconds() -> None:
    spans = [(s * S, (s + 4) * S) for s in range(0, 60, 5)]  # 4 s of speech, 1 s pauses, for a minute
    windows = plan_windows(spans)
    assert [w.seconds() for w in windows] == [(0.0, 29.0), (30.0, 59.0)]
    assert all(w.end - w.start <= 30 * S for w in windows)


def test_a_long_pause_closes_a_window() -> None:
    windows = plan_windows([(0, 4 * S), (5 * S, 8 * S), (20 * S, 24 * S)])
    assert [w.seconds() for w in windows] == [(0.0, 8.0), (20.0, 24.0)]  # 12 s of silence never decoded


def test_a_full_window_ends_at_the_longest_pause_of_its_last_7_seconds() -> None:
    runs = [(0.0, 6.0), (6.3, 12.0), (12.3, 18.0), (18.3, 23.0), (24.5, 27.0), (27.3, 29.5), (29.8, 33.0)]
    windows = plan_windows([(int(a * S), int(b * S)) for a, b in runs])
    # The 1.5 s pause at 23 s (a turn) beats the 0.3 s pauses after it: the next window starts with the turn.
    assert [w.seconds() for w in windows] == [(0.0, 23.0), (24.5, 33.0)]


def test_a_long_pause_too_early_in_the_window_is_not_a_cut() -> None:
    runs = [(0.0, 10.0), (12.0, 18.0), (18.3, 24.0), (24.3, 29.5), (29.8, 33.0)]
    windows = plan_windows([(int(a * S), int(b * S)) for a, b in runs])
    assert [w.seconds() for w in windows] == [(0.0, 29.5), (29.8, 33.0)]  # 12 s is more than 7 s from the end


def test_split_cuts_at_the_pause_nearest_the_middle() -> None:
    window = plan_windows([(0, 4 * S), (5 * S, 9 * S), (10 * S, 14 * S), (15 * S, 29 * S)])[0]
    halves = split(window)
    assert halves is not None
    assert [h.seconds() for h in halves] == [(0.0, 14.0), (15.0, 29.0)]
    assert split(plan_windows([(0, 3 * S)])[0]) is None  # too little speech to be worth it


def receiver(chunks: list[bytes]) -> Request:
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive() -> Message:
        return messages.pop(0)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [], "query_string": b""}
    return Request(scope, receive)


async def test_small_bodies_stay_bytes_large_ones_are_mapped() -> None:
    assert await read_spooled(receiver([b"a" * 10, b"b" * 10]), limit=100, in_memory=50) == b"a" * 10 + b"b" * 10
    body = await read_spooled(receiver([b"--x\r\n", b"y" * 100, b"\r\n--x--"]), limit=1000, in_memory=50)
    assert isinstance(body, mmap.mmap) and len(body) == 112 and body[:5] == b"--x\r\n" and body.find(b"--x--") == 107
    with pytest.raises(PayloadTooLarge):
        await read_spooled(receiver([b"z" * 60, b"z" * 60]), limit=100, in_memory=50)


async def test_a_mapped_body_parses_like_bytes() -> None:
    raw = b'--B\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-local\r\n--B--\r\n'
    mapped = await read_spooled(receiver([raw[:20], raw[20:]]), limit=1000, in_memory=10)
    form = MultipartForm.parse(mapped, "multipart/form-data; boundary=B")
    assert form.value("model") == b"whisper-local"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_a_local_deployment_needs_no_endpoint_and_defaults_to_the_bundled_model(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "deployments: [{model: whisper-1, provider: local}]"), {})
    deployment = settings.deployments[0]
    assert deployment.endpoint == "" and deployment.model_path == bundled_model_path()
    assert (Path(bundled_model_path()) / "model.bin").is_file()


def test_a_bad_model_path_is_named(tmp_path: Path) -> None:
    config = write(tmp_path, f"deployments: [{{model: w, provider: local, model_path: '{tmp_path}'}}]")
    with pytest.raises(ConfigError, match=r"deployments\[0\].*model_path .* has no model\.bin"):
        load_settings(config, {})


def test_azure_still_needs_its_endpoint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"deployments\[0\]: endpoint: Field required"):
        load_settings(write(tmp_path, "deployments: [{model: m, provider: azure}]"), {})


@pytest.mark.parametrize(
    ("spoken", "written"),
    [
        ("about sixty thousand dollars", "About $60,000."),
        ("eighty five thousand total", "85,000 total"),
        ("thirty five percent solids", "35% solids"),
        ("the twenty first of March", "the 21st of March"),
        ("nine thousand pounds", "£9,000"),
        ("three point five kW", "3.5 kW"),
        ("one million one and one", "1,000,001 and 1"),
        ("two point five million euros", "€2.5m"),
        ("the twelfth and the ninetieth", "the 12th and the 90th"),
        ("a four kilowatt centre", "A 4-kilowatt center"),
    ],
)
def test_word_error_rate_reads_digits_as_the_words_said(spoken: str, written: str) -> None:
    assert word_error_rate(spoken, written) == 0.0


def test_word_error_rate_counts_each_kind_of_error() -> None:
    assert word_error_rate("one two three four", "one too three") == 0.5  # a substitution and a deletion
    assert word_error_rate("one two", "one two three") == 0.5  # an insertion
    assert word_error_rate("", "anything") == 1.0


@pytest.mark.parametrize("name", ["market.flac", "weather.mp3"])
def test_long_decoded_audio_is_spooled_to_a_mapped_file(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    held = decode_audio(memoryview(recording(name)))
    monkeypatch.setattr(audio, "IN_MEMORY_SAMPLES", SAMPLE_RATE)  # a second instead of ten minutes
    spooled = decode_audio(memoryview(recording(name)))
    assert held.flags.owndata and not spooled.flags.owndata and not spooled.flags.writeable
    assert isinstance(spooled.base, memoryview) and isinstance(spooled.base.obj, mmap.mmap)
    assert spooled.dtype == np.float32 and np.array_equal(held, spooled)


def window_of(*runs: tuple[float, float]) -> Window:
    spans = tuple((int(a * S), int(b * S)) for a, b in runs)
    return Window(spans[0][0], spans[-1][1], spans)


def words_at(*times: tuple[str, float, float]) -> list[Word]:
    return [Word(f" {text}", start, end) for text, start, end in times]


def test_words_covering_the_speech_leave_no_gap() -> None:
    window = window_of((0.0, 2.0), (2.5, 4.0))
    words = words_at(("one", 0.1, 0.6), ("two", 0.7, 1.3), ("three", 1.4, 1.9), ("four", 2.6, 3.2), ("five", 3.3, 3.9))
    assert uncovered(window, words) == []
    assert uncovered(window, []) == []  # nothing decoded: the halves in engine.py deal with that


def test_speech_before_the_first_word_after_the_last_or_under_a_stretched_word_is_a_gap() -> None:
    window = window_of((0.0, 20.0))
    words = words_at(("late", 4.0, 4.5), ("start", 4.6, 5.0), ("stretched", 5.1, 12.0), ("then", 12.1, 12.5))
    gaps = uncovered(window, words)
    assert [(round(a, 1), round(b, 1)) for a, b in gaps] == [(0.0, 3.7), (5.3, 11.8), (12.8, 20.0)]


def test_uncovered_pauses_and_slivers_are_not_gaps() -> None:
    window = window_of((0.0, 3.0), (8.0, 10.0))  # the 5 s between the runs is silence, not skipped speech
    words = words_at(("a", 0.2, 1.0), ("b", 1.1, 1.9), ("c", 2.0, 2.6), ("d", 8.4, 9.0), ("e", 9.1, 9.6))
    assert uncovered(window, words) == []  # 0.3 s slivers at the edges are the alignment's slack


def test_a_short_gap_is_decoded_with_what_follows_a_long_one_alone() -> None:
    short = gap_clip((10.0, 12.0), 60 * S)
    assert short.seconds() == (9.7, 22.0)
    long = gap_clip((10.0, 20.0), 60 * S)
    assert long.seconds() == (9.7, 20.3)
    assert gap_clip((50.0, 52.0), 55 * S).seconds() == (49.7, 55.0)  # not past the recording
    assert gap_clip((0.0, 29.9), 60 * S).seconds() == (0.0, 30.0)  # never more than Whisper's 30 s


def test_splice_puts_the_gaps_words_in_place_of_the_stretched_one() -> None:
    words = words_at(("hello", 0.0, 0.5), ("there", 0.6, 6.0), ("bye", 6.1, 6.5))
    found = words_at(
        ("before", 0.2, 0.9), ("there", 1.0, 1.4), ("how", 2.0, 2.3), ("are", 2.4, 2.6), ("after", 7.0, 7.5)
    )
    spliced = splice(words, (0.9, 5.9), found)
    assert spliced is not None
    assert "".join(w.word for w in spliced) == " hello there how are bye"  # only words inside the gap
    assert splice(words, (3.0, 5.0), words_at(("elsewhere", 8.0, 8.5))) is None


@pytest.mark.parametrize(
    ("workers", "threads", "expected"),
    [(0, 0, (1, 2, 1)), (0, 2, (1, 1, 2)), (2, 0, (2, 2, 1)), (3, 1, (3, 3, 1))],
)
def test_pool_size_gives_every_core_a_one_thread_replica(
    workers: int, threads: int, expected: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda _: {0, 1})  # two cores, as on our machines
    assert tuple(pool_size(workers, threads)) == expected
