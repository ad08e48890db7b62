"""What a value of each kind must state (calls/values.py), alone and through `ground` (more in test_grounding.py)."""

from __future__ import annotations

import time

import pytest

from aoai_gateway.calls.values import (
    count_or_price,
    currency,
    listed,
    parts,
    proper_noun,
    repeats_a_word,
    spending,
    states_amount,
    states_money,
    states_time,
    to_spend,
)

from .test_roles import grounded, pair


def test_the_module_examples_hold() -> None:
    assert states_amount("twelve grand") and states_amount("a few thousand pounds") and not states_amount("not yet")
    assert not states_time("understood") and states_time("next Thursday") and states_time("in 6 weeks")
    assert proper_noun("alesund", "the harbour in Alesund") and not proper_noun("we spoke", "We spoke at the hall")
    assert not proper_noun("Monday", "We sent on Monday for Tuckwell Pastoral")  # a day is no place
    assert repeats_a_word("K-Kgomotso K-Kgomotso K") and not repeats_a_word("Kgomotso Mahlangu")
    assert proper_noun("Monday Creek", "the farm at Monday Creek") and proper_noun("São Paulo", "in São Paulo")
    # The quote must say it: a capitalised word put beside the quote names nothing the call says there.
    assert not proper_noun("Brightfield LED's facility", "the facility next to the invited in the spring")
    assert proper_noun("Ålesund, Norway", "our hall in Alesund is already finished")
    assert count_or_price("400 cubic meters per hour") and count_or_price("48,000 dollars")
    assert not count_or_price("Microsoft 365") and not count_or_price("3D printer")
    assert parts(["forklifts", "electric forklifts"]) == [(0, "electric forklifts")]
    assert to_spend("we had about twenty grand to spend", "$48,000") == "$20,000"
    assert to_spend("We budgeted £250 a month.", "$400") == "£250 a month"
    assert to_spend("up to 4.5 thousand a year", "€1") == "€4,500 a year"
    assert currency("£200", "two hundred dollars a month") == "$200"


@pytest.mark.parametrize(
    ("sentence", "money"),
    [
        ("Twelve of our engineers will spend a lot of time in Rio.", False),  # a count
        ("We've set aside around 24K for the year.", True),  # a scale
        ("Finance approved up to eighteen thousand pounds.", True),
        ("I can spend 250 on it.", True),  # a figure of a hundred or more
        ("We spend our days on the road.", False),
    ],
)
def test_money_is_told_from_counts(sentence: str, money: bool) -> None:
    assert states_money(sentence) is money
    assert (spending(sentence) != []) is money


@pytest.mark.parametrize(
    ("value", "when"),
    [
        ("not calling every day", False),  # how often, as tiny.en heard "Please don't call every day"
        ("each week", False),
        ("per month", False),
        ("every day from Monday", True),  # a day named besides
        ("within a month", True),
        ("day one", True),
    ],
)
def test_how_often_is_no_time(value: str, when: bool) -> None:
    assert states_time(value) is when


def test_listed_remembers_what_it_kept() -> None:
    seen: set[tuple[str, ...]] = set()
    kept: list[object] = []
    for item in ["Solar panels", "solar  PANELS!", "home battery", 3, 3]:
        if not listed(item, kept, seen):
            kept.append(item)
    assert kept == ["Solar panels", "home battery", 3]


def test_hostile_items_stay_cheap() -> None:
    long_item = " ".join(f"w{n}" for n in range(5000))  # past the runs collected: no part of anything
    began = time.process_time()
    assert parts([long_item, "w1 w2", "w1"]) == [(2, "w1 w2")]
    assert not proper_noun("a " * 20_000, "a " * 20_000)
    assert time.process_time() - began < 20  # generous: a busy machine


def test_a_budget_that_states_no_amount_is_dropped() -> None:
    text = "Do you have a budget?\nNot yet. I can't give you a number until I see pricing. Maybe twelve grand."
    said = "Not yet. I can't give you a number until I see pricing."
    none = grounded(text, budget=pair(said))
    assert none.fields["budget"] is None and none.evidence["budget"]["reason"] == "dropped: the value states no amount"
    assert grounded(text, budget=pair("$12,000", "Maybe twelve grand")).fields["budget"] == "$12,000"
    rough = "Do you have a budget?\nA few thousand pounds."
    assert grounded(rough, budget=pair("a few thousand pounds")).fields["budget"] == "a few thousand pounds"


def test_an_amount_quoted_from_the_wrong_sentence_rests_on_the_one_that_states_it() -> None:
    text = "We've got two kids and an electric car.\nWe've put aside about 9,000 pounds. Maybe 9.5 thousand at most."
    result = grounded(text, budget=pair("£9,000", "We've got two kids and an electric car"))
    assert result.fields["budget"] == "£9,000"
    note = result.evidence["budget"]
    assert note["passage"] == "We've put aside about 9,000 pounds." and note["quote_found"] is False
    assert note["segments"] == [1, 1] and "the one sentence of the call that does" in note["reason"]
    # an amount the call never states, or states in two sentences (which one?), is dropped as before
    assert grounded(text, budget=pair("£12,000", "We've got two kids")).fields["budget"] is None
    twice = "It was 9,000 last year.\nWe have 9,000 pounds now."
    assert grounded(twice, budget=pair("£9,000", "It was last year")).fields["budget"] is None


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("by the end of the quarter", True),
        ("within six weeks", True),
        ("Q3", True),
        ("before reopening on the 1st of March", True),
        ("after the summer holidays", True),
        ("understood", False),
        ("not called every day at all", False),  # "every day": how often, not when
        ("every day from the first of May", True),  # a month besides
        ("as agreed with the board", False),
    ],
)
def test_a_timeline_must_name_a_time(value: str, kept: bool) -> None:
    text = f"So when would you want it?\n{value}."
    result = grounded(text, timeline=pair(value))
    assert (result.fields["timeline"] == value) is kept
    if not kept:
        assert result.evidence["timeline"]["reason"] == "dropped: the value states no time"
