"""What an assent agrees to (calls/agreed.py): a next step given as "Will do" is the proposal it answers."""

from __future__ import annotations

import time

import pytest

from aoai_gateway.calls.agreed import LOOK_BACK, acknowledges, proposal_before, proposal_value
from aoai_gateway.calls.grounding import ground
from aoai_gateway.calls.transcript import Segment, Transcript

from .test_roles import BUNDLED, answer, grounded, pair

# The close of a call as the scripts have it: the agent's offer, the buyer's reply repeating part of it, the assent.
CLOSE = (
    "If we go ahead, the rollout would be in the new financial year.\n"
    "Okay. I'll send you our per-vehicle pricing and a case study, and then let's talk again next Monday.\n"
    "Fine. Send it to my email, and we'll talk on Monday.\n"
    "Will do. Thanks for your time."
)


@pytest.mark.parametrize(
    ("text", "assent"),
    [
        ("Will do. Thanks for your time.", True),
        ("Sounds good. Thank you, Rebecca.", True),
        ("Okay, thanks Jordan!", True),
        ("Lovely, see you soon.", True),
        ("Thursday works.", False),  # a day: something agreed, not assent alone
        ("Send it to my email.", False),
        ("Jordan.", False),  # a name alone, at the start of a sentence, is not assent
        ("", False),
        ("...", False),
    ],
)
def test_assent_is_courtesy_and_names_alone(text: str, assent: bool) -> None:
    assert acknowledges(text) is assent


def test_the_proposal_is_the_offer_not_the_reply_that_repeats_it() -> None:
    where = proposal_before(CLOSE, CLOSE.index("Will do"))
    assert where is not None
    assert CLOSE[slice(*where)].startswith("I'll send you our per-vehicle pricing")
    assert proposal_value(CLOSE[slice(*where)]) == (
        "I'll send you our per-vehicle pricing and a case study, and then let's talk again next Monday"
    )
    assert proposal_value("Great, I'll book it.") == "I'll book it"


def test_a_request_between_the_offer_and_the_assent_is_passed_over_within_the_look_back() -> None:
    text = (
        "In September.\nGreat. I'll send a proposal this week, and we'll arrange placement tests.\n"
        "Perfect. Send it to me, and copy my colleague in finance.\nWill do. Thanks, Hamid."
    )
    where = proposal_before(text, text.index("Will do"))
    assert where is not None and text[slice(*where)].startswith("I'll send a proposal this week")
    far = "I'll send the brochure.\n" + " ".join(f"Fact number {n} is here." for n in range(LOOK_BACK)) + "\nWill do."
    assert proposal_before(far, far.index("Will do")) is None  # the offer is not in the exchange the assent closes
    assert proposal_before("Will do.", 0) is None


def test_an_assent_given_as_the_next_step_is_the_proposal_with_its_place() -> None:
    transcript = Transcript.of([Segment(line, 10.0 * at, 10.0 * at + 9) for at, line in enumerate(CLOSE.split("\n"))])
    for given in (pair("will do", "Will do."), pair("quote, thank you", "Will do. Thanks for your time.")):
        result = ground(answer(next_steps=given), BUNDLED, transcript)
        assert result.fields["next_steps"].startswith("I'll send you our per-vehicle pricing")
        note = result.evidence["next_steps"]
        assert note["found"] and note["segments"] == [1, 1] and (note["start"], note["end"]) == (10.0, 19.0)
        assert note["value"] == given["value"] and "assent" in note["reason"]  # the model's answer stays


def test_an_assent_with_no_proposal_before_it_is_dropped_and_a_real_next_step_stays() -> None:
    text = "We have forty trucks.\nWill do. Thanks for your time."
    dropped = grounded(text, next_steps=pair("will do", "Will do."))
    assert dropped.fields["next_steps"] is None
    assert "no proposal" in dropped.evidence["next_steps"]["reason"]
    kept = grounded(CLOSE, next_steps=pair("pricing and a case study", "our per-vehicle pricing and a case study"))
    assert kept.fields["next_steps"] == "pricing and a case study" and "reason" not in kept.evidence["next_steps"]
    # a field without the annotation keeps its assent: only `x-agreed` reads it as what it agrees to
    assert grounded(CLOSE, company=pair("Will do")).fields["company"] == "Will do"


def test_hostile_closes_stay_linear_and_never_fail() -> None:
    long = "Fine. I'll do it. " * 20_000 + "Will do."
    began = time.process_time()
    where = proposal_before(long, len(long) - len("Will do."))
    assert where == (6, 6 + len("I'll do it."))  # back over the whole run of offers and assents, to the first
    assert acknowledges("Thanks, " * 20_000 + "Bob.")
    assert time.process_time() - began < 20  # generous: linear work, on a busy machine
    for text in ("\x00\x1b[31m Will do \u202e", "Will do.\n" * 3, "I'll\u2019ll.\nWill do."):
        result = grounded(text, next_steps=pair("will do", "Will do"))
        assert result.fields["next_steps"] is None or isinstance(result.fields["next_steps"], str)


def test_a_reply_taking_up_the_offer_just_before_it_is_the_offer() -> None:
    text = (
        "What's your timeline?\nIf we go ahead, the rollout would be in March.\n"
        "Okay. I'll send you our per-vehicle pricing and a case study, and then let's talk again next Monday.\n"
        "Fine. Send it to my email, and we'll talk on Monday.\nWill do."
    )
    given = pair("send it to my email, talk on Monday", "Send it to my email, and we'll talk on Monday.")
    result = grounded(text, next_steps=given)
    assert result.fields["next_steps"] == (
        "I'll send you our per-vehicle pricing and a case study, and then let's talk again next Monday"
    )
    assert result.evidence["next_steps"]["reason"] == (
        "the quote takes up the offer said just before it; the offer is the value"
    )
    # The offer itself stays as given.
    offer = pair("pricing and a case study", "I'll send you our per-vehicle pricing and a case study")
    assert grounded(text, next_steps=offer).fields["next_steps"] == "pricing and a case study"


def test_the_offers_own_question_is_passed_over_once() -> None:
    text = "I suggest a demo.\nHow does Wednesday look?\nWednesday works, I'll bring my leads.\nWill do."
    assert proposal_before(text, text.index("Will do")) == (0, len("I suggest a demo."))
    twice = "I suggest a demo.\nAny budget?\nHow does Wednesday look?\nWednesday works, I'll bring my leads.\nWill do."
    start, end = proposal_before(twice, twice.index("Will do")) or (0, 0)
    assert twice[start:end] == "Wednesday works, I'll bring my leads."


def test_an_offer_with_its_own_question_taken_up_by_the_reply_is_the_offer() -> None:
    """calls-dev d02 as tiny.en heard it on two sets of kernels: the buyer's reply ("When it works, I'll bring our
    two team leads") takes up the agent's suggestion, asked about in one question."""
    asked = (
        "We want to be live by the start of April.\nUnderstood, I suggest a live demo with your team leads.\n"
        "How does next Wednesday to look?\nWhen it works, I'll bring our two team leads.\n"
        "Perfect, I'll send the invite and the short question now beforehand."
    )
    reply = pair("bring our two team leads", "When it works, I'll bring our two team leads.")
    result = grounded(asked, next_steps=reply)
    assert result.fields["next_steps"] == "I suggest a live demo with your team leads"  # the assent opening it cut
    assert result.evidence["next_steps"]["passage"] == "Understood, I suggest a live demo with your team leads."
    # The agent's last commitment of the same exchange ("I'll send the invite") rests on the offer too.
    invite = pair("send the invite", "Perfect, I'll send the invite and the short question now beforehand.")
    assert grounded(asked, next_steps=invite).fields["next_steps"] == "I suggest a live demo with your team leads"
    # Two questions between: the reply may answer the second, not the offer; the value stays as given.
    twice = asked.replace("How does", "Do you have a budget?\nHow does")
    assert grounded(twice, next_steps=reply).fields["next_steps"] == "bring our two team leads"
    # "We usually recommend ..." is advice, not an offer: a commitment after it stays as given.
    advice = "For hard water we usually recommend a softener.\nRight?\nI'll think about it."
    mine = pair("think about it", "I'll think about it.")
    assert grounded(advice, next_steps=mine).fields["next_steps"] == "think about it"
