"""Misheard names of a recording's vocabulary written as the vocabulary spells them (respell.py), and what it
must leave alone: words already right, ordinary words, the words around a name, hostile and huge input."""

from __future__ import annotations

import random
import time

import pytest

from aoai_gateway.calls.pipeline import read_transcript
from aoai_gateway.calls.respell import respell, sound_key
from aoai_gateway.calls.transcript import Segment, Transcript

CALL = ["Callum Fairbairn", "Fairbairn Farms", "Leeds"]


@pytest.mark.parametrize(
    ("heard", "vocabulary", "written"),
    [
        # a name split, joined or misspelled by speech recognition
        ("Thanks, Calum. You're at Fair Burn Farms?", CALL, "Thanks, Callum. You're at Fairbairn Farms?"),
        (
            "Hi, is that Come Otso Mahlangu from Bush Veld Logistics?",
            ["Kgomotso Mahlangu", "Bushveld Logistics"],
            "Hi, is that Kgomotso Mahlangu from Bushveld Logistics?",
        ),
        (
            "This is Hamid Rezay, Caspian Sub Sea.",
            ["Hamid Rezaei", "Caspian Subsea"],
            "This is Hamid Rezaei, Caspian Subsea.",
        ),
        ("We're in Hamtrak.", ["Hamtramck"], "We're in Hamtramck."),
        # tiny.en, primed with the call's names, verbatim (calls-dev d09, d05, d02)
        (
            "I'm Fatima. Tamoyas Grünewald here, operations manager at Kessler Cold Storage.",
            ["Tobias Grünewald", "Kessler Cold Storage", "Kitchener"],
            "I'm Fatima. Tobias Grünewald here, operations manager at Kessler Cold Storage.",
        ),
        ("Thank you, KKgomotso.", ["Kgomotso Mahlangu"], "Thank you, Kgomotso."),
        ("The surname Abeyemi.", ["Oluwaseun Adeyemi"], "The surname Adeyemi."),
        # a possessive keeps its 's; punctuation around the name stays
        ("Is that Calum's number?", CALL, "Is that Callum's number?"),
        # a name's own small words are allowed in it
        ("Call the Bank of Irland today.", ["Bank of Ireland"], "Call the Bank of Ireland today."),
    ],
)
def test_misheard_names_are_written_as_the_vocabulary_does(heard: str, vocabulary: list[str], written: str) -> None:
    text, changes = respell(heard, vocabulary)
    assert text == written
    assert changes and all(change.heard in heard and change.name in written for change in changes)


@pytest.mark.parametrize(
    "heard",
    [
        "Callum Fairbairn here, from Fairbairn Farms in Leeds.",  # already right: nothing changes
        "Callum Fairbairn Thanks for calling.",  # a looser run never swallows the word after a right name
        "We buy sales leads. Leads are what we need.",  # "Leads" starts a sentence of a call that says "leads"
        "It was a fair burn on the farm.",  # ordinary lower-case words are not a name
        "Speak to Mark at Fair.",  # too short, too far
        "",
    ],
)
def test_what_is_not_a_misheard_name_stays(heard: str) -> None:
    assert respell(heard, CALL) == (heard, [])


def test_a_name_never_runs_over_the_words_that_join_a_sentence() -> None:
    # "Fair at Burn" holds "at": not one name, though its letters are close
    assert respell("Look at Fair at Burn.", ["Fairbairn"])[0] == "Look at Fair at Burn."


def test_no_vocabulary_or_hostile_names_change_nothing() -> None:
    heard = "Thanks, Calum."
    assert respell(heard, []) == (heard, [])
    assert respell(heard, ["", " ", "a", "\x00\x1b[31m", "1234"]) == (heard, [])
    # a name that is markup or a control sequence is written as given, only where it sounds alike: never here
    assert respell(heard, ["<script>alert(1)</script>"]) == (heard, [])
    assert respell(heard, ["<b>Callum</b>", "Callum\x1b[2J", "Cal\u202eum"]) == (heard, [])  # alike, not name-like
    assert respell("Hi, Script Alert.", ["<script>alert</script>"]) == ("Hi, Script Alert.", [])


def test_sound_key_makes_spellings_of_one_sound_one() -> None:
    assert sound_key("fairbairn") == sound_key("fairburn") == "farbarn"
    assert sound_key("philips") == sound_key("filips")
    assert sound_key("cecil") == sound_key("sesil")


def test_each_segment_is_respelled_and_keeps_its_times() -> None:
    transcript = Transcript.of([Segment("Hello, Calum here.", 0.0, 2.0), Segment("From Fair Burn Farms.", 2.0, 4.0)])
    respelled, changes = transcript.respelled(CALL)
    assert respelled.lines == "Hello, Callum here.\nFrom Fairbairn Farms."
    assert [segment.start for segment in respelled.segments] == [0.0, 2.0]
    assert [(c.heard, c.name) for c in changes] == [("Calum", "Callum"), ("Fair Burn Farms", "Fairbairn Farms")]
    assert transcript.respelled([]) == (transcript, [])


def test_the_pipeline_respells_with_the_vocabulary_kept_in_the_checkpoint() -> None:
    checkpoint = {
        "text": "Hi, Calum. S-M-I-T-H.",
        "segments": [{"start": 0.0, "end": 3.0, "text": "Hi, Calum. S-M-I-T-H."}],
        "vocabulary": ["Callum Fairbairn", 7, None],  # a damaged checkpoint: only the names are used
    }
    heard, read, changes = read_transcript(checkpoint)
    assert heard.text == "Hi, Calum. S-M-I-T-H."
    assert read.text == "Hi, Callum. Smith."
    assert [(c.heard, c.name) for c in changes] == [("Calum", "Callum")]
    # a checkpoint from before the vocabulary was kept: spelling resolved, nothing respelled
    _, read, changes = read_transcript({"text": "Hi, Calum.", "segments": []})
    assert read.text == "Hi, Calum." and changes == []


def test_a_long_call_with_a_full_vocabulary_is_respelled_in_bounded_time() -> None:
    rng = random.Random(7)
    pool = ["the", "customer", "said", "pumps", "Callum", "Fairburn", "Leeds", "budget", "Thanks", "Monday", "Great"]
    text = " ".join(rng.choice(pool) for _ in range(6000))  # about a 40-minute call
    names = [f"Company Number{i}" for i in range(80)] + CALL  # more names than a prompt holds
    started = time.process_time()
    written, changes = respell(text, names)
    assert "Fairbairn" in written and "Fairburn" not in written and changes
    assert time.process_time() - started < 30  # CPU time, generous: linear in words, bucketed by name length
    capitals = " ".join(["Aaaa"] * 6000)  # every run capitalised, none alike
    assert respell(capitals, names) == (capitals, [])
