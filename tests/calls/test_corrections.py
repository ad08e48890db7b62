"""Names the call corrects and names said in full (calls/corrections.py), alone and through `ground`."""

from __future__ import annotations

import time
from typing import Any

import pytest

from aoai_gateway.calls.corrections import completed, corrected, readdressed, taken_back
from aoai_gateway.calls.grounding import ground
from aoai_gateway.calls.schema import ExtractionSchema
from aoai_gateway.calls.transcript import Segment, Transcript

BUNDLED = ExtractionSchema.load(None)


@pytest.mark.parametrize(
    ("text", "value", "name"),
    [
        ("I have you down in Bristol? Ah, no, actually we're in Cardiff, not Bristol.", "Bristol", "Cardiff"),
        ("It's Małgorzata, actually. Not Margaret. Małgorzata Zięba.", "Margaret", "Małgorzata"),
        ("We're Harbour Fresh Foods. Not Harbour Foods, that's our old name.", "Harbour Foods", "Harbour Fresh Foods"),
        ("Sorry, it's São Paulo, not Rio.", "rio", "São Paulo"),
    ],
)
def test_a_name_the_call_takes_back_is_replaced_by_the_one_said_instead(text: str, value: str, name: str) -> None:
    found = corrected(text, value)
    assert found is not None and found[0] == name
    assert found[1] in text and found[1].startswith(name.split()[0])


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("We're in Bristol, and we are not moving.", "Bristol"),  # "not" before something else
        ("I do not Bristol anything.", "Bristol"),  # no name said in its place
        ("Bristol, not Bristol.", "Bristol"),  # the same name
        ("We are based in Cardiff and the office is huge, not Bristol.", "Bristol"),  # words between: not a correction
        ("", "Bristol"),
        ("Cardiff, not Bristol.", ""),
        ("Cardiff, knot Bristol.", "Bristol"),
    ],
)
def test_no_correction_without_one(text: str, value: str) -> None:
    assert corrected(text, value) is None


def test_a_one_word_name_is_completed_from_the_call() -> None:
    text = "Am I speaking with Katherine? Katarzyna Wiśniewska. Everyone gets it wrong. Katarzyna, yes."
    assert completed(text, "Katarzyna") == ("Katarzyna Wiśniewska", "Katarzyna Wiśniewska")
    assert completed("Thanks, Callum. So, the roof?", "Callum") is None  # a sentence break is no surname
    assert completed("Hamid It's me", "Hamid") is None
    assert completed("Callum Fairbairn here", "Callum Fairbairn") is None  # already more than one word
    assert completed("callum fairbairn", "Callum") is None  # lower case: no name


def transcript(*lines: str) -> Transcript:
    return Transcript.of([Segment(line, None, None) for line in lines])


def answer(**fields: Any) -> dict[str, Any]:
    empty = {"value": None, "quote": None}
    base: dict[str, Any] = {name: empty for name in BUNDLED.schema["properties"]}
    return {**base, "products_of_interest": [], "sentiment": "neutral", "summary": None, **fields}


def test_ground_applies_them_and_says_so() -> None:
    call = transcript(
        "Hello, this is Ana Costa from Solaria. Am I speaking with Margaret?",
        "It's Małgorzata, actually. Not Margaret. Małgorzata Zięba.",
        "I have your address as Bristol. Ah, no, actually we're in Cardiff, not Bristol.",
    )
    result = ground(
        answer(
            customer_name={"value": "Margaret", "quote": "Am I speaking with Margaret"},
            location={"value": "Bristol", "quote": "your address as Bristol"},
            seller_company={"value": "Solaria", "quote": "from Solaria"},
        ),
        BUNDLED,
        call,
    )
    assert result.fields["customer_name"] == "Małgorzata Zięba"
    assert result.fields["location"] == "Cardiff"
    assert result.evidence["location"]["reason"] == "the call corrects 'Bristol'"
    assert result.evidence["location"]["quote"] == "Cardiff, not Bristol"
    assert result.evidence["customer_name"]["reason"] == "the name as the call says it in full"
    assert result.evidence["location"]["was"] == {"value": "Bristol", "quote": "your address as Bristol"}
    # Corrected, then said in full: the model's own answer is what `was` keeps.
    assert result.evidence["customer_name"]["was"] == {"value": "Margaret", "quote": "Am I speaking with Margaret"}
    assert result.fields["agent_name"] == "Ana Costa"  # from the introduction (roles.py)


def test_hostile_values_and_long_text_stay_cheap() -> None:
    text = "and then " * 20_000 + "Cardiff, not Bristol."
    assert corrected(text, "Bristol") == ("Cardiff", "Cardiff, not Bristol")
    assert corrected("Aaa " * 20_000 + "Cardiff, not Bristol.", "Bristol") is None  # no name is 20,000 words long
    assert corrected("Leeds, not (.*)+$", "(.*)+$") is None  # a value is matched literally, never as a pattern
    assert completed("a]b[ c", "a]b[") is None


def test_a_name_taken_back_with_none_heard_in_its_place_is_dropped() -> None:
    # As tiny.en heard "we're in Leeds now, not Manchester" and "Is this Xochitl Ramírez?".
    call = transcript(
        "I have your address now as Manchester is not right. Ah, no, actually we believe not Manchester.",
        "Hi, this is Jordan Blake with ClearSpring. This is not Yuma Ramírez. Yes, that's me.",
    )
    assert taken_back(call.text, "Manchester") == "not Manchester" and taken_back(call.text, "Leeds") is None
    # "not Yuma Ramírez" takes back a person's name, not the city said as its first word.
    assert taken_back(call.text, "Yuma") is None and taken_back(call.text, "yuma ramírez") == "not Yuma Ramírez"
    assert taken_back("It's not Yuma. Not at all.", "Yuma") == "not Yuma"
    # The call's last word on a name stands: said again after it is taken back, it is not taken back.
    heard = "T.K. is not Bronwyn Tuckwell, it's seen a halfman. Yeah, Bronwyn Tuckwell, isn't this the quote?"
    assert taken_back(heard, "Bronwyn Tuckwell") is None
    assert taken_back("Not Bronwyn Tuckwell. Bronwyn Tuckwell-Smith, sorry.", "Bronwyn Tuckwell") is not None
    assert taken_back("Not Bronwyn Tuckwell. Bronwyn Tuckwell Pastoral.", "Bronwyn Tuckwell") is not None
    assert taken_back("Manchester, yes. Not Manchester.", "Manchester") == "Not Manchester"
    assert taken_back("Not Manchester. Manchester? No, not Manchester at all.", "Manchester") == "not Manchester"
    result = ground(
        answer(
            location={"value": "Manchester", "quote": "your address now as Manchester"},
            customer_name={"value": "Yuma Ramírez", "quote": "This is not Yuma Ramírez"},
        ),
        BUNDLED,
        call,
    )
    assert result.fields["location"] is None and result.fields["customer_name"] is None
    note = result.evidence["location"]
    assert not note["found"] and "takes it back ('not Manchester')" in note["reason"]
    assert note["was"] == {"value": "Manchester", "quote": "your address now as Manchester"}
    assert result.dropped == 2
    # A field without `x-corrections` keeps it; a name said and never taken back stays.
    kept = ground(answer(location={"value": "Leeds", "quote": "we believe"}), BUNDLED, transcript("Leeds, we believe."))
    assert kept.fields["location"] == "Leeds"
    city = ground(answer(location={"value": "Yuma", "quote": "Yuma Ramírez"}), BUNDLED, call)
    assert city.fields["location"] == "Yuma"
    assert (
        ground(answer(next_steps={"value": "Manchester", "quote": "as Manchester"}), BUNDLED, call).fields["next_steps"]
        == "Manchester"
    )


@pytest.mark.parametrize(
    ("text", "value", "name"),
    [
        # As tiny.en heard "Am I speaking with Katherine? It's Katarzyna, actually. Not Katherine. ..."
        (
            "Hi, this is Kevin Tran from Tabletop. Am I speaking with Katherine? My Katarzyna Wiśniewska, everyone "
            "gets it wrong, don't worry. Katherine. You run Babcia's Kitchen, right?",
            "Katherine",
            "Katarzyna Wiśniewska",
        ),
        ("Is that Margaret? Oh, it's Małgorzata Zięba, actually.", "Margaret", "Małgorzata Zięba"),
        ("I'm looking for Jon? Yes. Jonathan Price, that's me.", "Jon", None),  # the reply opens with "Yes." alone
        ("Am I speaking with Callum Fairbairn? Yes, speaking, I Priya.", "Callum", None),  # no question for "Callum"
        ("Am I speaking with Per? Yes, Per Lund here.", "Per", None),  # the full name holds the one asked for
        ("Is that Rhiannon? It's Tomasz Wrobel from Skyward Sprayers.", "Rhiannon", None),  # the caller introduced
        ("Is that Rhiannon? We sell Skyward Drones.", "Rhiannon", None),  # no name opens the reply
        ("Am I speaking with Katherine? Yes.", "Katherine", None),
        ("Am I speaking with Katherine?", "Katherine", None),
        ("Hello Katherine Wiśniewska? Mr Big Name.", "Katherine Wiśniewska", None),  # a full name is not re-asked
    ],
)
def test_a_name_asked_for_and_answered_with_another_full_name_is_that_name(
    text: str, value: str, name: str | None
) -> None:
    found = readdressed(text, value)
    assert (found[0] if found else None) == name
    if found:
        assert found[1] in text and found[1].startswith(value)


def test_ground_takes_the_name_given_in_answer() -> None:
    call = transcript(
        "Hi, this is Kevin Tran from Tabletop. Am I speaking with Katherine?",
        "My Katarzyna Wiśniewska, everyone gets it wrong, don't worry.",
    )
    result = ground(
        answer(
            customer_name={"value": "Katherine", "quote": "Am I speaking with Katherine?"},
            seller_company={"value": "Tabletop", "quote": "from Tabletop"},
        ),
        BUNDLED,
        call,
    )
    assert result.fields["customer_name"] == "Katarzyna Wiśniewska"
    note = result.evidence["customer_name"]
    assert note["reason"] == "the name given in answer to the one asked for"
    assert note["was"] == {"value": "Katherine", "quote": "Am I speaking with Katherine?"}
    hostile = "Am I speaking with Aaa? " + "Bbb Ccc Ddd Eee " * 20_000 + "? " + "Is that Aaa? " * 5_000
    began = time.process_time()
    assert readdressed(hostile, "Aaa") is None
    assert time.process_time() - began < 20  # generous: a busy machine
