"""A value's numbers must be in its quote: amounts read from digits and from words alike."""

from __future__ import annotations

import pytest

from aoai_gateway.calls.grounding import ground
from aoai_gateway.calls.numbers import amounts
from aoai_gateway.calls.schema import ExtractionSchema
from aoai_gateway.calls.transcript import Segment, Transcript

SCHEMA = ExtractionSchema.load(None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("£85,000 a year", {85000}),
        ("eighty-five thousand pounds", {85000}),
        ("one hundred and twenty thousand US dollars for the three units", {120000, 3}),
        ("$4,300", {4300}),
        ("forty-three hundred dollars", {4300}),
        ("1.2m", {1_200_000}),
        ("two point four million", {2_400_000}),
        ("one and a half million", {1_500_000}),
        ("1.5 million", {1_500_000}),
        ("twelve k", {12000}),
        ("a hundred grand", {100_000}),
        ("twenty grand", {20000}),
        ("9 000 euros", {9000}),
        ("within six weeks", {6}),
        ("by the end of March", set()),
        ("12 15", {12, 15}),
        ("", set()),
    ],
)
def test_amounts(text: str, expected: set[float]) -> None:
    assert amounts(text) == expected


CALL = Transcript.of(
    [
        Segment("We've helped several fish processors cut their lighting costs by more than half.", 0, 5),
        Segment("We've put aside about nine thousand pounds, and we need it within six weeks.", 5, 10),
    ]
)


def answer(**fields: object) -> dict[str, object]:
    empty: dict[str, object] = {name: {"quote": None, "value": None} for name in SCHEMA.fields}
    empty.update(products_of_interest=[], sentiment={"quote": None, "value": "neutral"}, summary=None)
    return {**empty, **fields}


def test_an_amount_said_in_words_is_kept_in_digits() -> None:
    result = ground(
        answer(
            budget={"quote": "put aside about nine thousand pounds", "value": "£9,000"},
            timeline={"quote": "within six weeks", "value": "within 6 weeks"},
        ),
        SCHEMA,
        CALL,
    )
    assert result.fields["budget"] == "£9,000" and result.fields["timeline"] == "within 6 weeks"
    assert result.dropped == 0


def test_an_amount_its_quote_does_not_state_is_dropped() -> None:
    invented = {"quote": "cut their lighting costs by more than half", "value": "£1,500,000"}
    wrong = {"quote": "put aside about nine thousand pounds", "value": "£90,000"}
    result = ground(answer(budget=invented, timeline=wrong), SCHEMA, CALL)
    assert result.fields["budget"] is None and result.fields["timeline"] is None and result.dropped == 2
    note = result.evidence["budget"]
    assert note["found"] is False and "numbers (1,500,000) are not in its quote" in note["reason"]
    assert "(90,000)" in result.evidence["timeline"]["reason"]


@pytest.mark.parametrize(
    ("said", "value", "kept"),
    [
        ("We have two hundred dollars a month for it.", "£200 a month", "$200 a month"),
        ("Around nine thousand pounds.", "$9,000", "£9,000"),
        ("About 9,000 € in total.", "£9,000", "€9,000"),
        ("Around nine thousand pounds.", "£9,000", "£9,000"),
        ("Around nine thousand, give or take.", "£9,000", "£9,000"),  # the call names no currency: as written
        ("Nine thousand pounds, or ten thousand dollars at most.", "£9,000", "£9,000"),  # two: left alone
    ],
)
def test_an_amount_keeps_the_currency_its_quote_names(said: str, value: str, kept: str) -> None:
    call = Transcript.of([Segment(said, 0, 3)])
    result = ground(answer(budget={"quote": said, "value": value}), SCHEMA, call)
    assert result.fields["budget"] == kept
    assert result.evidence["budget"]["value"] == value  # what the model wrote stays in the evidence


@pytest.mark.parametrize("written", ["null", "None", " N/A ", "not mentioned", "unknown."])
def test_a_null_written_as_a_word_is_null(written: str) -> None:
    result = ground(
        answer(
            budget={"quote": "cut their lighting costs", "value": written},
            products_of_interest=[{"quote": "fish processors", "value": written}],
        ),
        SCHEMA,
        CALL,
    )
    assert result.fields["budget"] is None and result.fields["products_of_interest"] == []
