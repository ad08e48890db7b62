"""Grounded fields: each value kept only with a quote found in the transcript, its evidence stored and shown.

The checks themselves on hand-made transcripts, then a model that invents (a scripted emulator answer) through
the whole pipeline into SQLite and PostgreSQL and out through `calls show`.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from aoai_gateway.calls.grounding import ground, grounded_schema
from aoai_gateway.calls.quotes import FUZZY_THRESHOLD, MAX_QUOTE_CHARS, find_quote
from aoai_gateway.calls.schema import ExtractionSchema
from aoai_gateway.calls.transcript import Segment, Transcript
from aoai_gateway.cli import main

from .conftest import SPEECH_AUDIO, CallsConfigFactory, one_recording, write_config

SCHEMA = ExtractionSchema.load(None)
CALL = Transcript.of(
    [
        Segment("Good afternoon, this is Priya Raman calling from Northlight Solar.", 0.0, 4.2),
        Segment("Am I speaking with Callum Fairbairn?", 4.2, 6.0),
        Segment("Ah, no, actually we're in Leeds, not Manchester.", 6.5, 9.8),
        Segment("We've put aside about nine thousand pounds for the panels and a home battery.", 10.1, 15.0),
    ]
)


def answer(**fields: Any) -> dict[str, Any]:
    """A grounded answer: every field null but those given."""
    empty: dict[str, Any] = {name: {"value": None, "quote": None} for name in SCHEMA.fields}
    empty.update(products_of_interest=[], sentiment={"value": "neutral", "quote": None}, summary=None)
    return {**empty, **fields}


def test_the_model_is_asked_for_each_value_with_its_quote_in_a_strict_schema() -> None:
    wrapped = grounded_schema(SCHEMA.schema)
    asked = ExtractionSchema.from_dict(wrapped)
    assert asked.strict and SCHEMA.strict
    assert "x-grounded" not in json.dumps(wrapped)  # our annotation never reaches the model
    assert wrapped["properties"]["summary"] == {
        k: v for k, v in SCHEMA.schema["properties"]["summary"].items() if k != "x-grounded"
    }
    name = wrapped["properties"]["customer_name"]
    assert name["required"] == ["quote", "value"] == list(name["properties"])  # the quote is written first
    assert name["properties"]["value"]["type"] == ["string", "null"]
    assert wrapped["properties"]["products_of_interest"]["items"]["required"] == ["quote", "value"]
    assert asked.problem(answer()) is None
    assert asked.problem({**answer(), "company": "Acme"}) is not None  # a bare value is not an answer


def test_found_quotes_keep_their_values_with_the_segment_times() -> None:
    result = ground(
        answer(
            customer_name={"value": "Callum Fairbairn", "quote": "speaking with Callum Fairbairn"},
            # case, punctuation, apostrophes and spacing differ: the same words
            location={"value": "Leeds", "quote": "WE'RE in leeds  not manchester"},
            budget={"value": "£9,000", "quote": "about nine thousand pounds"},
            products_of_interest=[{"value": "home battery", "quote": "a home battery"}],
        ),
        SCHEMA,
        CALL,
    )
    assert result.fields["customer_name"] == "Callum Fairbairn" and result.fields["location"] == "Leeds"
    assert result.fields["products_of_interest"] == ["home battery"] and result.dropped == 0
    name = result.evidence["customer_name"]
    assert (name["found"], name["score"], name["start"], name["end"]) == (True, 1.0, 4.2, 6.0)
    assert name["passage"] == "speaking with Callum Fairbairn" and name["value_score"] == 1.0
    assert result.evidence["budget"]["value_score"] < 0.5  # "£9,000" is said as words: kept, flagged for review
    assert result.evidence["location"]["passage"] == "we're in Leeds, not Manchester"
    assert result.evidence["products_of_interest"][0]["start"] == 10.1
    # A quote over two segments spans both.
    across = ground(
        answer(location={"value": "Leeds", "quote": "Callum Fairbairn? Ah, no, actually we're in Leeds"}), SCHEMA, CALL
    )
    assert (across.evidence["location"]["start"], across.evidence["location"]["end"]) == (4.2, 9.8)


def test_a_quote_copied_with_a_slip_is_found_fuzzily_and_a_paraphrase_is_not() -> None:
    slipped = find_quote("we have put aside about nine thousand pounds", CALL.text)
    assert slipped is not None and FUZZY_THRESHOLD <= slipped.score < 1.0
    assert CALL.text[slipped.start : slipped.end].startswith("We've put aside")
    paraphrase = find_quote("the budget is nine grand", CALL.text)
    assert paraphrase is not None and paraphrase.score < FUZZY_THRESHOLD
    # Whole words only: "Lee" is not in "Leeds".
    partial = find_quote("Lee", CALL.text)
    assert partial is not None and partial.score < FUZZY_THRESHOLD


def test_an_invented_value_is_dropped_to_null_and_the_reason_kept() -> None:
    result = ground(
        answer(
            customer_name={"value": "Dana Whitfield", "quote": "my name is Dana Whitfield"},
            company={"value": "Northlight Solar", "quote": None},  # no quote at all
            products_of_interest=[
                {"value": "solar panels", "quote": "for the panels"},
                {"value": "heat pump", "quote": "and a heat pump"},
            ],
            sentiment={"value": "positive", "quote": "I love it"},
        ),
        SCHEMA,
        CALL,
    )
    assert result.fields["customer_name"] is None and result.fields["company"] is None
    assert result.fields["products_of_interest"] == ["solar panels"]
    assert result.dropped == 3
    invented = result.evidence["customer_name"]
    assert invented["value"] == "Dana Whitfield" and not invented["found"]
    assert invented["reason"] == "dropped: the quote is not in the transcript (no passage holds half its words)"
    assert result.evidence["company"]["reason"] == "dropped: no quote given"
    assert result.evidence["products_of_interest"][1]["reason"].startswith("dropped: the quote is not")
    # sentiment cannot be null: kept, and marked as resting on nothing
    assert result.fields["sentiment"] == "positive"
    assert result.evidence["sentiment"]["reason"].startswith("kept unsupported")


PRODUCTS_CALL = Transcript.of(
    [
        Segment("Forty-eight thousand dollars for one drone? That's 48,000 dollars for the whole thing.", 0.0, 5.0),
        Segment("We run 400 cubic meters per hour through the old pumps on 3,000 hectares.", 5.0, 9.0),
        Segment("We want electric forklifts, and the forklifts must be a 3D printer friendly model.", 9.0, 14.0),
        Segment("Also Microsoft 365 licences and a two-group espresso machine, about $5,000 in all.", 14.0, 19.0),
    ]
)


def products(*items: str) -> dict[str, Any]:
    return answer(products_of_interest=[{"value": item, "quote": item} for item in items])


def test_a_product_that_is_an_amount_or_a_count_is_dropped() -> None:
    result = ground(
        products(
            "48,000 dollars",
            "400 cubic meters per hour",
            "3,000 hectares",
            "$5,000",
            "Microsoft 365",
            "3D printer",
            "two-group espresso machine",
        ),
        SCHEMA,
        PRODUCTS_CALL,
    )
    assert result.fields["products_of_interest"] == ["Microsoft 365", "3D printer", "two-group espresso machine"]
    assert result.dropped == 4
    reasons = [note["reason"] for note in result.evidence["products_of_interest"][:4]]
    assert reasons == ["dropped: an amount or a count, not the name of a thing"] * 4
    # Only where the schema asks for it (`x-no-amounts`): a list of figures elsewhere keeps them.
    plain = ExtractionSchema.from_dict(
        {
            **SCHEMA.schema,
            "properties": {
                **SCHEMA.schema["properties"],
                "products_of_interest": {
                    k: v for k, v in SCHEMA.schema["properties"]["products_of_interest"].items() if k != "x-no-amounts"
                },
            },
        }
    )
    kept = ground(products("48,000 dollars", "3,000 hectares"), plain, PRODUCTS_CALL)
    assert kept.fields["products_of_interest"] == ["48,000 dollars", "3,000 hectares"]


def test_a_product_that_is_an_organisation_or_a_person_of_the_call_is_dropped() -> None:
    """tiny.en, calls-dev d11: the buyer's company and the seller's first word given as products."""
    call = Transcript.of(
        [
            Segment("Hello, Martin Carlsick from Lingua Bridge training. Can I speak with Hamid Rezaei?", 0.0, 4.0),
            Segment("I manage Caspian Subsea Engineering. We need Portuguese, and Vantor pumps.", 4.0, 9.0),
        ]
    )
    given = {
        "seller_company": {"value": "Lingua Bridge training", "quote": "Lingua Bridge training"},
        "company": {"value": "Caspian Subsea Engineering", "quote": "Caspian Subsea Engineering"},
        "customer_name": {"value": "Hamid Rezaei", "quote": "Hamid Rezaei"},
    }
    items = ("Portuguese", "Caspian Subsea Engineering", "Lingua", "pumps", "training", "Hamid")
    result = ground({**products(*items), **given}, SCHEMA, call)
    # The company, the seller's first words, the customer's first name: dropped; a word that ends a name is not
    # its name ("pumps" beside "Vantor Pumps", "training" beside "Lingua Bridge training").
    assert result.fields["products_of_interest"] == ["Portuguese", "pumps", "training"]
    assert result.dropped == 3
    reasons = [note["reason"] for note in result.evidence["products_of_interest"] if not note["found"]]
    assert reasons[0] == "dropped: the name of company ('Caspian Subsea Engineering'), not one of products_of_interest"
    assert reasons[1].startswith("dropped: the name of seller_company") and len(reasons) == 3
    assert reasons[2] == "dropped: the name of customer_name ('Hamid Rezaei'), not one of products_of_interest"
    # Without the annotation, kept.
    plain = ExtractionSchema.from_dict(
        {
            **SCHEMA.schema,
            "properties": {
                **SCHEMA.schema["properties"],
                "products_of_interest": {
                    k: v
                    for k, v in SCHEMA.schema["properties"]["products_of_interest"].items()
                    if k != "x-differs-from"
                },
            },
        }
    )
    assert ground({**products(*items), **given}, plain, call).fields["products_of_interest"] == list(items)


def test_a_quote_pieced_together_that_states_the_amount_rests_on_the_one_sentence_that_does() -> None:
    """tiny.en, calls-dev d02: "18,000 pounds a year for 35 seats" joins two sentences of the call."""
    call = Transcript.of(
        [
            Segment("What sort of budget are you working with?", 0.0, 2.0),
            Segment("I've improved up to 18,000 pounds a year for the software, including training.", 2.0, 7.0),
            Segment("That fits comfortably for 35 seats, and timing?", 7.0, 9.0),
        ]
    )
    stitched = {"value": "£18,000 a year", "quote": "18,000 pounds a year for 35 seats"}
    result = ground(answer(budget=stitched), SCHEMA, call)
    assert result.fields["budget"] == "£18,000 a year"
    note = result.evidence["budget"]
    assert note["passage"] == "I've improved up to 18,000 pounds a year for the software, including training."
    assert note["quote_found"] is False and note["segments"] == [1, 1] and note["start"] == 2.0
    # A pieced quote that does not state the value's amount supports nothing; nor does one whose amount two
    # sentences state (which one is meant is not known).
    other = ground(answer(budget={"value": "£18,000", "quote": "pounds a year for 35 seats"}), SCHEMA, call)
    assert other.fields["budget"] is None
    twice = Transcript.of([*call.segments, Segment("Yes, 18,000 pounds was the old quote.", 9.0, 11.0)])
    assert ground(answer(budget=stitched), SCHEMA, twice).fields["budget"] is None
    # An invented amount is in no sentence.
    assert ground(answer(budget={"value": "£19,000", "quote": "19,000 pounds"}), SCHEMA, call).fields["budget"] is None
    # Thousands of pieced quotes against thousands of sentences: a look-up each, not a scan of the call each.
    many = Transcript.of([Segment(" ".join(f"Part {n} costs {n + 5000} pounds." for n in range(1000)), 0.0, 1.0)])
    pairs = [{"value": f"gadget {n + 5000} pounds", "quote": f"{n + 5000} pounds for the gadget"} for n in range(1000)]
    schema = ExtractionSchema.from_dict(_unbounded())
    schema.schema["properties"]["products_of_interest"].pop("x-no-amounts")
    began = time.process_time()
    result = ground(answer(products_of_interest=pairs), schema, many)
    assert len(result.fields["products_of_interest"]) == 1000
    assert result.evidence["products_of_interest"][7]["passage"] == "Part 7 costs 5007 pounds."
    assert time.process_time() - began < 120  # generous: a busy machine; the fuzzy look-up of each quote dominates


def test_an_item_that_is_part_of_another_is_listed_once_as_the_longer() -> None:
    result = ground(products("forklifts", "electric forklifts", "Forklifts", "espresso machine"), SCHEMA, PRODUCTS_CALL)
    assert result.fields["products_of_interest"] == ["electric forklifts", "espresso machine"]
    notes = result.evidence["products_of_interest"]
    assert notes[0]["reason"] == "dropped: part of 'electric forklifts', listed already" and not notes[0]["found"]
    assert notes[2]["reason"] == "dropped: listed already"
    assert result.dropped == 2
    # Words of another item not in a run of it are no part of it.
    apart = ground(products("the forklifts", "electric forklifts"), SCHEMA, PRODUCTS_CALL)
    assert apart.fields["products_of_interest"] == ["the forklifts", "electric forklifts"]
    assert ground(products("espresso machine", "forklifts"), SCHEMA, PRODUCTS_CALL).fields["products_of_interest"] == [
        "espresso machine",
        "forklifts",
    ]

    # A hostile answer of thousands of items, each in the call: the parts are found in linear time, not pairwise.
    many = Transcript.of([Segment(" ".join(f"widget{n} model{n} extra{n}." for n in range(3000)), 0.0, 1.0)])
    items = [f"widget{n} model{n}" for n in range(3000)] + [f"model{n}" for n in range(3000)]
    pairs = [{"value": item, "quote": item} for item in items]
    began = time.process_time()
    result = ground(answer(products_of_interest=pairs), ExtractionSchema.from_dict(_unbounded()), many)
    assert result.fields["products_of_interest"] == items[:3000]
    assert time.process_time() - began < 120  # generous: a busy machine; pairwise would be 36 million comparisons


def _unbounded() -> dict[str, Any]:
    """The bundled schema with no cap on the products listed."""
    schema = json.loads(json.dumps(SCHEMA.schema))
    schema["properties"]["products_of_interest"].pop("maxItems")
    return dict(schema)


@pytest.mark.parametrize(
    ("agent", "customer", "kept"),
    [
        ("Priya Raman", "Priya Raman", False),  # the agent taken for the customer
        ("Priya Raman", "Priya", False),  # the same person, by one of her names
        ("Priya", "priya RAMAN", False),
        ("Priya Raman", "Callum Fairbairn", True),
        (None, "Callum Fairbairn", True),
    ],
)
def test_a_customer_who_is_the_agent_is_dropped(agent: str | None, customer: str, kept: bool) -> None:
    said = "Good afternoon, this is Priya Raman calling from Northlight Solar. Am I speaking with Callum Fairbairn?"
    call = Transcript.of([Segment(said, 0.0, 4.0)])
    result = ground(
        answer(
            agent_name={"quote": "this is Priya Raman" if agent else None, "value": agent},
            seller_company={"quote": "calling from Northlight Solar", "value": "Northlight Solar"},
            customer_name={"quote": "Priya Raman calling from", "value": customer},
            company={"quote": "Northlight Solar", "value": "Northlight Solar"},
        ),
        SCHEMA,
        call,
    )
    # Dropped when it is the agent; then the other person the call names is the customer (roles.name_the_customer).
    assert result.fields["customer_name"] == (customer if kept else "Callum Fairbairn")
    if not kept:
        assert result.evidence["customer_name"]["was"]["value"] == customer
    assert result.fields["company"] is None  # the seller's company is never the customer's
    assert result.evidence["company"]["reason"].startswith("dropped: the same as seller_company ('Northlight Solar')")
    # No agent given: the one who calls from the seller is the agent (roles.py).
    # A one-word agent is said in full in the call: "Priya" is "Priya Raman" (corrections.py).
    assert result.fields["agent_name"] == ("Priya Raman" if agent in (None, "Priya") else agent)
    assert result.fields["seller_company"] == "Northlight Solar"
    if not kept:
        assert "the other person the call names than the agent" in result.evidence["customer_name"]["reason"]


def test_hostile_quotes_are_refused_quickly_and_never_match() -> None:
    hostile = [
        "\x1b]0;pwned\x07\x00\u202e",  # controls and an override only: no words
        "\u200b\u200b",
        "",
        " \t\n ",
        "Leeds" * 1_000_000,  # 5 MB
        "in Leeds " + "\x00" * (MAX_QUOTE_CHARS + 1),
    ]
    started = time.perf_counter()
    for quote in hostile:
        result = ground(answer(location={"value": "Leeds", "quote": quote}), SCHEMA, CALL)
        note = result.evidence["location"]
        assert result.fields["location"] is None and not note["found"], quote[:20]
        assert len(note["quote"]) <= MAX_QUOTE_CHARS + 3
    assert time.perf_counter() - started < 30  # refused unread, not searched: generous for a busy machine
    huge = ground(answer(location={"value": "Leeds", "quote": "x" * 10_000_000}), SCHEMA, CALL)
    assert "over 400: not a short quote" in huge.evidence["location"]["reason"]
    # A transcript full of controls: the words between them still match, nothing else does.
    noisy = Transcript.of([Segment("we\x00are\x1b[31m in \u202eLeeds\u202c now", 1.0, 2.0)])
    assert ground(answer(location={"value": "Leeds", "quote": "in Leeds now"}), SCHEMA, noisy).fields["location"]


def test_a_long_transcript_is_searched_in_reasonable_time() -> None:
    words = ["and", "then", "we", "talked", "about", "the", "weather", "and", "the", "price", "of", "the", "pumps"]
    long_call = Transcript.of([Segment(" ".join(words * 20), float(i), float(i + 1)) for i in range(60)])  # 16k words
    started = time.perf_counter()
    found = find_quote("we talked about the weather and the prize of the pumps", long_call.text)
    assert found is not None and found.score >= FUZZY_THRESHOLD
    # Words found everywhere anchor everywhere: only the likeliest windows are compared.
    common = find_quote("the the the the and and and the of of", long_call.text)
    assert common is not None and common.score < FUZZY_THRESHOLD
    assert time.perf_counter() - started < 60  # about a second here; the bound only catches a quadratic search


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_inventing_model_through_the_pipeline_stores_and_shows_the_evidence(
    backend: str,
    request: pytest.FixtureRequest,
    calls_config: CallsConfigFactory,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    extra = {"database_url": request.getfixturevalue("postgres_url")} if backend == "postgresql" else {}
    config = write_config(
        tmp_path / "config.yaml", calls_config("extract-invented", max_output_tokens=100_000, **extra)
    )
    folder = one_recording(tmp_path / "calls", f"call-{backend}.wav", SPEECH_AUDIO / "report.wav")
    if backend == "postgresql":  # the session's database is shared: start from no calls
        asyncio.run(_clear(config))

    assert main(["calls", "process", str(folder), "--config", str(config), "--force"]) == 0
    capfd.readouterr()
    assert main(["calls", "show", _only_id(config, capfd), "--config", str(config), "--format", "json"]) == 0
    document = json.loads(capfd.readouterr().out)

    fields, evidence = document["fields"], document["evidence"]
    assert fields["customer_name"] is None and fields["location"] is None
    assert fields["company"] == "Acme Ltd" and fields["timeline"] == "before the summer" and fields["budget"] is None
    assert fields["products_of_interest"] == ["solar panels"] and fields["summary"] == "Made up."
    assert document["models"]["extraction"]["dropped"] == 4 and document["models"]["extraction"]["grounded"]
    company = evidence["company"]
    assert company["found"] and company["start"] == 0.0 and company["end"] > 0
    assert company["passage"] == "an emulated transcription"
    assert evidence["timeline"]["found"] and evidence["timeline"]["score"] == 1.0
    assert evidence["budget"]["reason"] == "dropped: the value's numbers (9,000) are not in its quote"
    assert evidence["location"]["reason"].startswith("dropped: the quote is not in the transcript")
    assert evidence["location"]["value"] == "\x1b]0;pwned\x07Leeds"  # stored as given, escaped when shown
    assert "over 400" in evidence["products_of_interest"][1]["reason"]
    assert len(evidence["products_of_interest"][1]["quote"]) == MAX_QUOTE_CHARS + 3

    assert main(["calls", "show", document["id"][:12], "--config", str(config)]) == 0
    shown = capfd.readouterr().out
    assert '  company: Acme Ltd\n      "an emulated transcription" at 0:00.0-0:' in shown
    assert "  customer_name: -\n      dropped: the quote is not in the transcript" in shown
    assert 'the value "Dana Whitfield", quoted "my name is Dana Whitfield"' in shown
    assert "\x1b" not in shown and "\x07" not in shown and "\\u001b]0;pwned" in shown


def _only_id(config: Path, capfd: pytest.CaptureFixture[str]) -> str:
    assert main(["calls", "list", "--config", str(config), "--format", "json"]) == 0
    (line,) = capfd.readouterr().out.strip().splitlines()
    return str(json.loads(line)["id"])


async def _clear(config: Path) -> None:
    from aoai_gateway.calls.cli import open_store
    from aoai_gateway.config import load_settings

    store = await open_store(load_settings(str(config), {}))
    try:
        await store.db.execute("DELETE FROM calls")
        await store.db.execute("DELETE FROM call_files")
    finally:
        await store.db.close()


def test_with_grounding_off_the_model_answers_the_fields_themselves(
    calls_config: CallsConfigFactory, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "config.yaml", calls_config("gpt-4o", grounding=False))
    folder = one_recording(tmp_path / "calls", "call.wav", SPEECH_AUDIO / "report.wav")
    assert main(["calls", "process", str(folder), "--config", str(config)]) == 0
    capfd.readouterr()
    assert main(["calls", "show", _only_id(config, capfd), "--config", str(config), "--format", "json"]) == 0
    document = json.loads(capfd.readouterr().out)
    assert SCHEMA.problem(document["fields"]) is None  # the bundled schema's own shape, no quotes
    assert document["evidence"] == {} and document["models"]["extraction"]["grounded"] is False


def test_a_price_said_back_gives_way_to_the_amount_the_buyer_has_to_spend() -> None:
    call = Transcript.of(
        [
            Segment("Forty-eight thousand dollars for one drone?", 0.0, 3.0),
            Segment("I told your colleague we had about twenty grand to spend.", 3.0, 7.0),
            Segment("Twelve of our pilots will spend the season on it.", 7.0, 10.0),
        ]
    )
    result = ground(answer(budget={"value": "$48,000", "quote": "Forty-eight thousand dollars"}), SCHEMA, call)
    assert result.fields["budget"] == "$20,000"
    note = result.evidence["budget"]
    assert note["passage"] == "I told your colleague we had about twenty grand to spend." and note["segments"] == [1, 1]
    assert note["value"] == "$48,000" and note["quote_found"] is False
    # An amount the call gives as the buyer's to spend stays; so does any where two sentences could be the budget.
    kept = ground(answer(budget={"value": "$20,000", "quote": "about twenty grand to spend"}), SCHEMA, call)
    assert kept.fields["budget"] == "$20,000" and "reason" not in kept.evidence["budget"]
    monthly = Transcript.of(
        [Segment("Four hundred dollars a month?", 0, 1), Segment("We budgeted £250 a month.", 1, 2)]
    )
    per_month = ground(answer(budget={"value": "$400", "quote": "Four hundred dollars"}), SCHEMA, monthly)
    assert per_month.fields["budget"] == "£250 a month"  # the sentence's currency and period
    two = Transcript.of([*call.segments, Segment("Maybe we could spend thirty thousand at most.", 10.0, 12.0)])
    unsure = ground(answer(budget={"value": "$48,000", "quote": "Forty-eight thousand dollars"}), SCHEMA, two)
    assert unsure.fields["budget"] == "$48,000"


def test_a_place_with_no_capitalised_word_is_no_place_and_the_agent_no_company() -> None:
    call = Transcript.of(
        [
            Segment("My name is Samuel Okafor from Brightfield LED.", 0.0, 3.0),
            Segment("We spoke at the facility next to the harbour in Alesund.", 3.0, 6.0),
            Segment("Thank you, Julia.", 6.0, 7.0),
        ]
    )
    result = ground(
        answer(
            agent_name={"value": "Julia", "quote": "Thank you, Julia."},
            company={"value": "Julia", "quote": "Julia"},
            location={"value": "the facility next to the harbour", "quote": "the facility next to the harbour"},
        ),
        SCHEMA,
        call,
    )
    assert result.fields["location"] is None and result.fields["company"] is None
    assert "no passage says a word of it capitalised" in result.evidence["location"]["reason"]
    assert "agent_name" in result.evidence["company"]["reason"]
    # A place the model wrote in lower case that the call capitalises is a place.
    lower = ground(answer(location={"value": "alesund", "quote": "the harbour in Alesund"}), SCHEMA, call)
    assert lower.fields["location"] == "alesund"
    # A sentence's first word is capitalised whatever it is: no proper noun for that.
    opening = ground(answer(location={"value": "we spoke", "quote": "We spoke at the facility"}), SCHEMA, call)
    assert opening.fields["location"] is None
    after_stop = Transcript.of([Segment("Thanks, Julia. Okay, the harbour it is.", 0.0, 2.0)])
    quoted = {"value": "okay the harbour", "quote": "Julia. Okay, the harbour"}
    assert ground(answer(location=quoted), SCHEMA, after_stop).fields["location"] is None


def test_a_place_rests_on_the_sentence_that_says_it() -> None:
    call = Transcript.of(
        [
            Segment("You run The Driftwood Café, right?", 0.0, 2.0),
            Segment("Yes, a café on the harbour front in Oban.", 2.0, 5.0),
            Segment("My name is Samuel Okafor from Brightfield LED.", 5.0, 8.0),
            Segment("We spoke at the facility next to the expo.", 8.0, 10.0),
        ]
    )
    # A place quoted beside a sentence that does not say it rests on the one that does, as the quote of an amount.
    result = ground(answer(location={"value": "Oban", "quote": "The Driftwood Café"}), SCHEMA, call)
    assert result.fields["location"] == "Oban"
    note = result.evidence["location"]
    assert note["passage"] == "Yes, a café on the harbour front in Oban." and note["segments"] == [1, 1]
    assert note["quote_found"] is False and note["start"] == 2.0 and "the sentence of the call" in note["reason"]
    # A capitalised word put beside a quote that does not say it names nothing the call says.
    beside = {"value": "Brightfield LED's facility", "quote": "the facility next to the expo"}
    dropped = ground(answer(location=beside), SCHEMA, call)
    assert dropped.fields["location"] is None and "no passage says" in dropped.evidence["location"]["reason"]
    # Said only as a sentence's first word is not said capitalised: no place.
    # A place longer than any quote is looked for nowhere: a hostile value on a long call stays cheap.
    long_call = Transcript.of([Segment("We met at Leeds Arena and spoke about Leeds. " * 2_000, 0.0, 60.0)])
    began = time.process_time()
    huge = ground(answer(location={"value": "Leeds " * 5_000, "quote": "spoke about"}), SCHEMA, long_call)
    assert huge.fields["location"] is None and time.process_time() - began < 20  # generous: a busy machine
    opening = Transcript.of([Segment("Oban? Not at all.", 0.0, 1.0), Segment("We're nowhere near.", 1.0, 2.0)])
    assert (
        ground(answer(location={"value": "oban", "quote": "nowhere near"}), SCHEMA, opening).fields["location"] is None
    )


def test_an_assent_holding_none_of_the_values_numbers_is_still_the_proposal_it_answers() -> None:
    call = Transcript.of(
        [
            Segment("We're sending 12 engineers to Rio next year.", 0, 2),  # the value's number said twice
            Segment("I'll send the proposal this week, and we'll arrange placement tests for the 12 engineers.", 2, 5),
            Segment("Perfect, send it to me.", 5.0, 6.0),
            Segment("Will do, thanks Hamid.", 6.0, 7.0),
        ]
    )
    value = "send proposal, arrange placement tests for the 12 engineers"
    result = ground(answer(next_steps={"value": value, "quote": "Will do, thanks Hamid."}), SCHEMA, call)
    assert result.fields["next_steps"] == (
        "I'll send the proposal this week, and we'll arrange placement tests for the 12 engineers"
    )
    assert result.evidence["next_steps"]["found"] is True
    # Numbers missing from a quote that is no assent still drop the value.
    other = ground(answer(next_steps={"value": value, "quote": "Perfect, send it to me."}), SCHEMA, call)
    assert other.fields["next_steps"] is None
