"""Names that survive speech recognition: spelled-out names resolved, and a vocabulary primed into Whisper.

The spelled forms below are what local tiny.en wrote for espeak-ng voices (en-gb+m4, en-us+f3) saying "The surname
is Adeyemi, A, D, E, Y, E, M, I. And the first name is Oluwaseun, O, L, U, W, A, S, E, U, N. My reference number
is K, 7, 4, Q."; the slow test makes such a recording itself and runs it through the pipeline.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from aoai_gateway.calls.sources import LocalSource, SourceItem
from aoai_gateway.calls.spelling import resolve_spelling
from aoai_gateway.calls.transcript import Segment, Transcript
from aoai_gateway.calls.vocabulary import MAX_PROMPT_CHARS, Vocabulary, prompt_text, read_names
from aoai_gateway.cli import main

from .conftest import CallsConfigFactory, write_config

HEARD = [  # tiny.en, verbatim
    (
        "Sure, the surname is a name is A-B-E-Y-E-M-I, and the first name is all the way Sun-O-L-U-W-A-S-E-U-N, "
        "my reference number is K-7-4-Q.",
        "Sure, the surname is a name is Abeyemi, and the first name is all the way Sun-Oluwaseun, "
        "my reference number is K74Q.",
    ),
    (
        "Sure, the surname is okay. Me, A, D, E, Y, E, M, I. And the first name is Oluwaseun, O, L, U, N, O, U, A, "
        "S, E, U. And my reference number is K, M, 4, Q.",
        "Sure, the surname is okay. Me, Adeyemi. And the first name is Oluwaseun, Olunouaseu. "
        "And my reference number is KM4Q.",
    ),
]


@pytest.mark.parametrize(("heard", "resolved"), HEARD)
def test_spelled_names_from_real_transcripts_are_written_as_words(heard: str, resolved: str) -> None:
    assert resolve_spelling(heard) == resolved


@pytest.mark.parametrize(
    ("text", "resolved"),
    [
        ("that's S-M-I-T-H, Smith", "that's Smith, Smith"),
        ("s m i t h", "Smith"),
        ("C, A, double L, U, M", "Callum"),
        ("it's I. B. M.", "it's IBM."),  # short or vowel-less: an acronym
        ("H-S-B-C", "HSBC"),
        ("call 0 7 7 0 0 9 0 0", "call 07700900"),
        # words and ordinary text stay as they are
        (
            "a T-shirt, an X-ray, an e-mail, COVID-19, an A-level",
            "a T-shirt, an X-ray, an e-mail, COVID-19, an A-level",
        ),
        ("Plan A, B or C; we need 2 pumps", "Plan A, B or C; we need 2 pumps"),
        ("I, a, I", "I, a, I"),
        ("", ""),
    ],
)
def test_spelling_rules(text: str, resolved: str) -> None:
    assert resolve_spelling(text) == resolved


def test_resolution_keeps_segments_and_hostile_text_is_linear() -> None:
    transcript = Transcript.of([Segment("My name is Smith,", 1.0, 2.0), Segment("S-M-I-T-H.", 2.0, 4.0)]).resolved()
    assert transcript.text == "My name is Smith, Smith." and transcript.segments[1].start == 2.0
    # A run of a million letters, or letters between hostile characters: one pass, no blow-up.
    assert resolve_spelling("a " * 500_000) == "a " * 500_000  # only a and I: words, not a spelling
    assert resolve_spelling("A-" * 200_000 + "B") == ("A" * 200_000 + "B").capitalize()
    assert resolve_spelling("x, " * 300_000) == "X" * 300_000 + ", "
    assert resolve_spelling("S\x00M\x00I\x00T\x00H") == "S\x00M\x00I\x00T\x00H"


def test_the_prompt_lists_the_most_specific_names_last_within_whispers_budget() -> None:
    assert prompt_text([]) is None
    assert prompt_text(["Acme", "Fjordline Seafood", "acme", "Ingrid Solberg"]) == (
        "Fjordline Seafood, acme, Ingrid Solberg."
    )
    many = [f"Company Number {i:04d}" for i in range(1000)] + ["Oluwaseun Adeyemi"]
    prompt = prompt_text(many)
    assert prompt is not None and len(prompt) <= MAX_PROMPT_CHARS + 1
    assert prompt.endswith("Company Number 0999, Oluwaseun Adeyemi.")


def test_vocabulary_files_hostile_content_is_cleaned(tmp_path: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_bytes(
        b"# CRM export\n\nAcme Ltd\n  Fjordline   Seafood \n\x1b]0;pwned\x07Evil\n\xff\xfeBad bytes\n"
        + b"x" * 5000
        + b"\n"
        + b"y\n" * 2_000_000  # 4 MB: only the first MiB is read
    )
    read = read_names(names)
    assert read[:4] == ["Acme Ltd", "Fjordline Seafood", "]0;pwnedEvil", "\ufffd\ufffdBad bytes"]
    assert read[4] == "x" * 100 and len(read) < 600_000
    with pytest.raises(Exception, match=r"calls\.vocabulary_path .*missing\.txt"):
        Vocabulary.load(str(tmp_path / "missing.txt"))


def test_a_recordings_folder_and_sidecar_lists_add_their_names(tmp_path: Path) -> None:
    (tmp_path / "vocabulary.txt").write_text("Harbourline Insurance Brokers\n")
    (tmp_path / "call.wav.vocabulary.txt").write_text("Oluwaseun Adeyemi\n")
    (tmp_path / "call.wav").write_bytes(b"RIFF")
    (tmp_path / "other.wav").write_bytes(b"RIFF")
    vocabulary = Vocabulary(("Northlight Solar",))

    async def prompts() -> dict[str, str | None]:
        items = await LocalSource(str(tmp_path)).scan()  # sidecar lists are not recordings
        return {item.name: await vocabulary.prompt_for(item) for item in items}

    assert asyncio.run(prompts()) == {
        "call.wav": "Northlight Solar, Harbourline Insurance Brokers, Oluwaseun Adeyemi.",
        "other.wav": "Northlight Solar, Harbourline Insurance Brokers.",
    }
    blob = SourceItem("azure://calls/call.wav", "call.wav", 4, "etag", 0.0)  # no sidecars in a container
    assert asyncio.run(vocabulary.prompt_for(blob)) == "Northlight Solar."


def test_a_missing_vocabulary_file_stops_the_command_with_the_reason(
    calls_config: CallsConfigFactory, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "calls").mkdir()
    config = write_config(tmp_path / "c.yaml", calls_config(vocabulary_path=str(tmp_path / "nope.txt")))
    assert main(["calls", "process", str(tmp_path / "calls"), "--config", str(config)]) == 1
    err = capfd.readouterr().err
    assert "calls.vocabulary_path" in err and "nope.txt" in err and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (apt-get install espeak-ng)")
def test_a_spelled_name_spoken_by_espeak_is_resolved_and_the_vocabulary_reaches_whisper(
    calls_config: CallsConfigFactory, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "calls"
    folder.mkdir()
    said = (
        "Sure. The surname is Adeyemi, A, D, E, Y, E, M, I. And the first name is Oluwaseun, "
        "O, L, U, W, A, S, E, U, N. My reference number is K, 7, 4, Q."
    )
    subprocess.run(
        ["espeak-ng", "-v", "en-gb+m4", "-s", "155", "-w", str(folder / "call.wav"), said], check=True, timeout=120
    )
    (folder / "call.wav.vocabulary.txt").write_text("Oluwaseun\nAdeyemi\n")
    config = write_config(tmp_path / "c.yaml", calls_config(transcribe_model="whisper-local"))

    assert main(["calls", "process", str(folder), "--config", str(config)]) == 0
    capfd.readouterr()
    assert main(["calls", "list", "--config", str(config), "--format", "json"]) == 0
    call_id = json.loads(capfd.readouterr().out)["id"]
    assert main(["calls", "show", call_id, "--config", str(config), "--format", "json"]) == 0
    document = json.loads(capfd.readouterr().out)

    heard, resolved = document["transcript"], document["resolved_transcript"]
    assert "Oluwaseun" in heard  # primed by the call's vocabulary (tiny.en alone writes "all the way Sun")
    assert document["models"]["transcription"]["prompt"] == "Oluwaseun, Adeyemi."
    spelled = re.compile(r"\b[A-Z](?:(?:-|, )[A-Z]\b){2,}")
    assert spelled.search(heard), heard  # Whisper wrote letters one by one ...
    assert resolved is not None and not spelled.search(resolved), resolved  # ... the model reads words
    assert resolved != heard  # and the original is kept beside it
