"""A request not to be called again (calls/declines.py) settles the bundled sentiment as negative."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from aoai_gateway.calls.declines import asked_off_the_list, declined
from aoai_gateway.calls.grounding import ground
from aoai_gateway.calls.schema import ExtractionSchema
from aoai_gateway.calls.transcript import Segment, Transcript

from .test_roles import BUNDLED, answer, grounded, pair

# calls-dev d07, as scripted: the model answered "neutral", a next step and a timeline
DECLINED = (
    "I appreciate the call, but we signed with another supplier last month.\n"
    "I'm sorry about that. Could I perhaps check back next year?\n"
    "No, please don't. Just take my number off your list.\n"
    "Understood, Ingrid. I'll remove you from our call list today."
)


@pytest.mark.parametrize(
    "said",
    [
        "Just take my number off your list.",
        "Please remove us from your mailing list.",
        "Take me off the do not call list, please.",
        "Stop calling me.",
        "Don't call us again.",
        "Do not contact me anymore!",
        "Could you cross our number off the list?",
    ],
)
def test_a_request_not_to_be_called_again_is_found(said: str) -> None:
    text = f"Hello.\n{said}\nGoodbye."
    where = asked_off_the_list(text)
    assert where is not None and text[slice(*where)] == said


@pytest.mark.parametrize(
    "said",
    [
        "I'll remove you from our call list today.",  # the agent's promise, not the buyer's request
        "Please don't call every day, though.",  # not a request to stop
        "Can you put me on your mailing list?",
        "Take my number down: 0161 496 0000.",
        "We removed the old pumps from the list of spares.",
        "",
    ],
)
def test_what_is_not_such_a_request_is_not_found(said: str) -> None:
    assert asked_off_the_list(f"Hello.\n{said}\nGoodbye.") is None


def test_the_buyer_who_asks_off_the_list_is_negative_and_has_no_next_step() -> None:
    given = {
        "sentiment": pair("neutral", "I appreciate the call"),
        "next_steps": pair("check back next year", "Could I perhaps check back next year?"),
        "timeline": pair("last month", "we signed with another supplier last month"),
    }
    result = grounded(DECLINED, **given)
    assert result.fields["sentiment"] == "negative"
    assert result.fields["next_steps"] is None and result.fields["timeline"] is None
    note = result.evidence["sentiment"]
    assert note["quote"] == "Just take my number off your list." and note["segments"] == [2, 2]
    assert note["was"] == {"value": "neutral", "quote": "I appreciate the call"}
    assert "not to be called again" in note["reason"]
    kept = grounded(DECLINED.replace("Just take my number off your list.", "Fine."), **given)
    assert kept.fields["sentiment"] == "neutral" and kept.fields["next_steps"] == "check back next year"


@pytest.mark.parametrize("declined", [None, 3, ["negative"], "furious", ""])
def test_an_odd_annotation_changes_nothing(declined: Any) -> None:
    schema = copy.deepcopy(BUNDLED.schema)
    schema["properties"]["sentiment"]["x-declined"] = declined
    transcript = Transcript.of([Segment(line, None, None) for line in DECLINED.split("\n")])
    given = answer(sentiment=pair("neutral", "I appreciate the call"))
    assert ground(given, ExtractionSchema.from_dict(schema), transcript).fields["sentiment"] == "neutral"


def test_hostile_text_is_searched_in_linear_time() -> None:
    text = ("take me off " * 5_000 + "your " * 5_000 + ". ") * 4 + "remove us from the list."
    began = time.process_time()
    assert asked_off_the_list(text) is not None
    assert asked_off_the_list("don't call " * 20_000) is None
    assert declined("we are just not " * 20_000 + "it's really not worth it " * 20_000) is None
    assert time.process_time() - began < 20  # generous: a busy machine


@pytest.mark.parametrize(
    "said",
    [
        "I appreciate the call, but we're not interested anymore.",
        "Honestly, I am just not interested.",
        "Still no. It's not worth it for us.",
        "That's really not worth it to me, sorry.",
    ],
)
def test_a_plain_refusal_is_a_decline(said: str) -> None:
    text = f"Hello.\n{said}\nGoodbye."
    found = declined(text)
    assert found is not None and text[found.start : found.end].strip() in said
    assert found.reason == "the buyer refuses the offer"


@pytest.mark.parametrize(
    "said",
    [
        "I'm not interested in the add-ons, just the chair.",  # refuses a part, not the offer
        "Is it worth it for us, do you think?",
        "It's not worth it to wait another year.",
        "They're not interested, but we are.",
        "",
    ],
)
def test_what_is_not_a_refusal_is_not_one(said: str) -> None:
    assert declined(f"Hello.\n{said}\nGoodbye.") is None


def test_a_refusal_sets_the_sentiment_and_a_request_off_the_list_comes_first() -> None:
    text = "Forty-eight thousand dollars for one drone?\nStill no. It's not worth it for us.\nThanks anyway."
    result = grounded(text, sentiment=pair("neutral", "Thanks anyway."), next_steps=pair("check in", "Thanks anyway."))
    assert result.fields["sentiment"] == "negative" and result.fields["next_steps"] is None
    assert result.evidence["sentiment"]["reason"] == "the buyer refuses the offer"
    assert result.evidence["sentiment"]["quote"] == "It's not worth it for us."
    both = declined("We're not interested.\nJust take my number off your list.")
    assert both is not None and both.reason == "the buyer asks not to be called again"
