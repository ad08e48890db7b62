"""Who is who in a call (calls/roles.py): the agent is the one who calls from the seller's company."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from aoai_gateway.calls.grounding import ground
from aoai_gateway.calls.roles import introduction, names_themselves
from aoai_gateway.calls.schema import ExtractionSchema
from aoai_gateway.calls.transcript import Segment, Transcript

BUNDLED = ExtractionSchema.load(None)


@pytest.mark.parametrize(
    ("text", "seller", "name"),
    [
        (
            "G'day, is that Rhiannon Pike? It's Tomasz Wrobel from Skyward Sprayers.",
            "Skyward Sprayers",
            "Tomasz Wrobel",
        ),
        ("Hello, my name is Adaeze Obi, from Brightway Lamps. We met at the fair.", "Brightway Lamps", "Adaeze Obi"),
        ("Good morning, this is Sunniva Dahl calling from Nordkapp Freight.", "Nordkapp Freight", "Sunniva Dahl"),
        ("Hi, Marco Bellini with Verdant Office here.", "Verdant Office", "Marco Bellini"),
        ("Hi, I'm Li Wei and I'm calling from Harbour Telecom.", "harbour telecom", "Li Wei"),
        ("Hello, this is Jörg Müller-Lüdenscheidt from Äpfel Gruppe.", "Äpfel Gruppe", "Jörg Müller-Lüdenscheidt"),
        (
            "Good morning, my name is Henrik Nyberg, I'm an application engineer with Andes Pumps, calling from our "
            "office in Rotterdam.",
            "Andes Pumps",
            "Henrik Nyberg",
        ),
        ("Hi, Mo Ali, I am the regional sales lead at Skyward Sprayers.", "Skyward Sprayers", "Mo Ali"),
    ],
)
def test_the_name_said_as_calling_from_the_seller_is_the_agent(text: str, seller: str, name: str) -> None:
    found = introduction(text, seller)
    assert found is not None and found.name == name
    assert text[found.start : found.end] == found.passage


@pytest.mark.parametrize(
    ("text", "seller"),
    [
        ("Is that Rhiannon Pike? It's Tomasz Wrobel from Skyward Sprayers.", "Another Company"),  # not the seller
        ("I work at Skyward Sprayers, we sell drones.", "Skyward Sprayers"),  # nobody named
        ("this is from Skyward Sprayers", "Skyward Sprayers"),
        # A role of more than three words, or one not opened by "a / an / the", is not an introduction.
        ("It's Mo Ali, I'm a very very very old friend from Skyward Sprayers.", "Skyward Sprayers"),
        ("It's Mo Ali, I'm calling about Skyward Sprayers.", "Skyward Sprayers"),
        ("", "Skyward Sprayers"),
        ("It's Tomasz Wrobel from Skyward Sprayers.", ""),
    ],
)
def test_no_introduction_no_answer(text: str, seller: str) -> None:
    assert introduction(text, seller) is None


def test_names_themselves() -> None:
    text = "Hi Rebecca, this is Doctor Arun Mehta. Thanks for calling back. I'm Ola."
    assert names_themselves(text, "Doctor Arun Mehta") and names_themselves(text, "Arun Mehta")
    assert names_themselves(text, "Ola")
    assert not names_themselves(text, "Rebecca") and not names_themselves(text, "")


def pair(value: Any, quote: str | None = None) -> dict[str, Any]:
    return {"value": value, "quote": quote if quote is not None else value}


def answer(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "agent_name": pair(None),
        "seller_company": pair(None),
        "customer_name": pair(None),
        "company": pair(None),
        "location": pair(None),
        "products_of_interest": [],
        "budget": pair(None),
        "timeline": pair(None),
        "sentiment": "neutral",
        "next_steps": pair(None),
        "summary": None,
    }
    return {**base, **fields}


def grounded(text: str, **fields: Any) -> Any:
    transcript = Transcript.of([Segment(line, None, None) for line in text.split("\n")])
    return ground(answer(**fields), BUNDLED, transcript)


def test_swapped_agent_and_customer_are_put_back() -> None:
    text = "G'day, is that Rhiannon Pike? It's Tomasz Wrobel from Skyward Sprayers.\nYeah, Rhiannon speaking."
    result = grounded(
        text,
        agent_name=pair("Rhiannon Pike"),
        seller_company=pair("Skyward Sprayers"),
        customer_name=pair("Tomasz Wrobel"),
    )
    assert result.fields["agent_name"] == "Tomasz Wrobel"
    assert result.fields["customer_name"] == "Rhiannon Pike"
    assert "Skyward Sprayers" in result.evidence["agent_name"]["quote"]
    assert "named by the model as agent_name" in result.evidence["customer_name"]["reason"]
    assert result.evidence["customer_name"]["quote"] == "Rhiannon Pike"  # the quote the model gave for that person
    # What the model answered stays in the evidence.
    assert result.evidence["agent_name"]["was"] == {"value": "Rhiannon Pike", "quote": "Rhiannon Pike"}
    assert result.evidence["customer_name"]["was"] == {"value": "Tomasz Wrobel", "quote": "Tomasz Wrobel"}


def test_a_customer_who_names_themselves_replaces_an_organisation_taken_for_them() -> None:
    text = (
        "Good morning, is this Riverside Dental? This is Rebecca Holm from Dentaply Supply.\n"
        "Hi Rebecca, this is Doctor Arun Mehta. Thanks for calling back."
    )
    result = grounded(
        text,
        agent_name=pair("Doctor Arun Mehta", "this is Doctor Arun Mehta"),
        seller_company=pair("Dentaply Supply"),
        customer_name=pair("Riverside Dental"),
    )
    assert (result.fields["agent_name"], result.fields["customer_name"]) == ("Rebecca Holm", "Doctor Arun Mehta")


def test_a_right_answer_is_left_alone_and_the_agent_as_customer_still_dropped() -> None:
    text = "Hello, this is Sunniva Dahl calling from Nordkapp Freight. Am I speaking with Per Lund?\nYes."
    right = grounded(
        text,
        agent_name=pair("Sunniva Dahl"),
        seller_company=pair("Nordkapp Freight"),
        customer_name=pair("Per Lund"),
    )
    assert (right.fields["agent_name"], right.fields["customer_name"]) == ("Sunniva Dahl", "Per Lund")
    assert "reason" not in right.evidence["agent_name"]
    both_agent = grounded(
        text,
        agent_name=pair("Sunniva Dahl"),
        seller_company=pair("Nordkapp Freight"),
        customer_name=pair("Sunniva Dahl"),
    )
    # dropped as the agent (x-differs-from), then the other person the call names is the customer
    assert both_agent.fields["customer_name"] == "Per Lund"
    assert both_agent.evidence["customer_name"]["was"]["value"] == "Sunniva Dahl"


def test_without_an_introduction_or_a_seller_nothing_moves() -> None:
    text = "Hi, it's me again about the order.\nOh hello, Per Lund here."
    result = grounded(
        text, agent_name=pair("Per Lund"), seller_company=pair(None), customer_name=pair("Per Lund", "Per Lund here")
    )
    assert result.fields["agent_name"] == "Per Lund" and result.fields["customer_name"] is None  # dropped as before


def test_hostile_text_cannot_make_the_rule_slow_or_crash() -> None:
    # A long run of capitalised words and "from" with no seller after them: linear, no catastrophic backtracking.
    text = ("Aaa Bbb Ccc Ddd Eee from " * 5000) + "It's Mo Ali from Skyward Sprayers."
    found = introduction(text, "Skyward Sprayers")
    assert found is not None and found.name == "Mo Ali"
    assert introduction("<script>alert(1)</script> from Skyward", "Skyward") is None
    # The same for the customer's naming: capitalised words without end, and cues without a name after them.
    hostile = "Hi, this is Mo Ali. " + ("Aaa Bbb Ccc Ddd, " * 5000) + ("this is " * 5000) + "Is that Per Lund?"
    started = time.process_time()
    result = grounded(hostile, agent_name=pair("Mo Ali"), customer_name=pair("Mo Ali"))
    assert result.fields["customer_name"] == "Per Lund"
    # The buyer's person and the companies' swap: one long sentence naming the agent again and again, "at" without
    # the company after it, and both companies given.
    sentence = "Mo Ali " + "at the " * 20_000 + "Greenacre Farms."
    given = {"company": pair("Greenacre Farms", "Mo Ali"), "seller_company": pair("Skyward Sprayers", "Mo Ali")}
    swapped = grounded("Mo Ali " * 5_000 + sentence, agent_name=pair("Mo Ali"), **given)
    assert swapped.fields["company"] == "Greenacre Farms"
    assert time.process_time() - started < 30  # linear: generous for a busy machine


def test_a_customer_named_as_the_buyers_company_is_dropped_and_the_company_kept() -> None:
    text = "Hello, this is Mo Ali from Skyward Sprayers. Is that Greenacre Farms?\nYes, Greenacre Farms here."
    result = grounded(
        text,
        agent_name=pair("Mo Ali"),
        seller_company=pair("Skyward Sprayers"),
        customer_name=pair("Greenacre Farms"),
        company=pair("Greenacre Farms"),
    )
    assert result.fields["customer_name"] is None and result.fields["company"] == "Greenacre Farms"
    assert "the same as company" in result.evidence["customer_name"]["reason"]


@pytest.mark.parametrize(
    ("text", "company"),
    [
        # tiny.en, calls-dev d02 and d09: the seller misheard, the buyer's company said by the buyer
        (
            "The law to master error here from pipewell CRM, returning your call. Who am I speaking with?\n"
            "Hi, Tamars. This is Oluwaseun Adeyemi. I'm the sales operations manager at Harbourline Insurance Brokers.",
            "Harbourline Insurance Brokers",
        ),
        (
            "You'll have to noon for the mail saying speaking from lift right material handling.\n"
            "I'm Fatima. Tobias Grünewald here, operations manager at Kessler Cold Storage.",
            "Kessler Cold Storage",
        ),
    ],
)
def test_the_buyers_company_given_as_the_seller_too_is_the_buyers(text: str, company: str) -> None:
    result = grounded(text, seller_company=pair(company), company=pair(company))
    assert result.fields["company"] == company and result.fields["seller_company"] is None
    note = result.evidence["seller_company"]
    assert note["found"] is False and "the call opens calling from another" in note["reason"]
    assert note["was"] == {"value": company, "quote": company}
    # With no opening calling from anyone, still the buyer's: no one in the call is from it.
    quiet = grounded(text.split("\n", 1)[1], seller_company=pair(company), company=pair(company))
    assert quiet.fields["company"] == company and quiet.fields["seller_company"] is None
    assert "no one in the call is from it" in quiet.evidence["seller_company"]["reason"]


def test_an_opening_calling_from_another_outweighs_the_buyers_own_introduction() -> None:
    """tiny.en, calls-dev d02 (another machine's kernels): the buyer introduces themselves from their company with
    a comma, as the agent would ("The Oluwaseun Adeyemi, I'm the sales operations manager at Harbourline"), and the
    model gave that company as both. The opening calls from another: the company is the buyer's, nobody moves."""
    text = (
        "The law to master error here from pipewell CRM, returning your call from this morning, who am I speaking "
        "with? Hi, Tamars.\nThe Oluwaseun Adeyemi, I'm the sales operations manager at Harbourline Insurance Brokers."
    )
    company = "Harbourline Insurance Brokers"
    people = {"agent_name": pair("Tamars"), "customer_name": pair("Oluwaseun Adeyemi")}
    result = grounded(text, seller_company=pair(company), company=pair(company), **people)
    assert result.fields["company"] == company and result.fields["seller_company"] is None
    assert result.fields["customer_name"] == "Oluwaseun Adeyemi" and result.fields["agent_name"] == "Tamars"
    assert "'here from pipewell'" in result.evidence["seller_company"]["reason"]
    # "Calling from our office" names no organisation: the introduction from the company decides, as before.
    office = (
        "Good morning, my name is Henrik Naal, I'm an application engineer with Mentor Pumps, calling from our office "
        "in Rotterdam. Is this Marisol Quispe?\nYes, this is Marisol."
    )
    kept = grounded(office, seller_company=pair("Mentor Pumps"), company=pair("Mentor Pumps"))
    assert kept.fields["seller_company"] == "Mentor Pumps" and kept.fields["company"] is None
    # The opening calling from the organisation given as both: the seller's, "the" or not.
    own = "Hi, Tomás Herrera here from Harbourline Insurance Brokers.\nHi, this is Oluwaseun."
    mine = grounded(own, seller_company=pair(company), company=pair(company))
    assert mine.fields["seller_company"] == company and mine.fields["company"] is None
    café = "Hi, Giulia here from the Driftwood Café.\nHi."
    theirs = grounded(café, seller_company=pair("The Driftwood Café"), company=pair("The Driftwood Café"))
    assert theirs.fields["seller_company"] == "The Driftwood Café" and theirs.fields["company"] is None
    # "from the" is not "from The Driftwood Café": another organisation after it makes this one the buyer's.
    other = "Hi, Giulia here from the Crema Pro team.\nYou run The Driftwood Café?"
    buyer = grounded(other, seller_company=pair("The Driftwood Café"), company=pair("The Driftwood Café"))
    assert buyer.fields["company"] == "The Driftwood Café" and buyer.fields["seller_company"] is None


@pytest.mark.parametrize(
    ("text", "seller", "buyer"),
    [
        # tiny.en, calls-dev d08 and d06: the model gave the seller as the buyer's company and the buyer's as the seller
        (
            "Hi, this is Kevin Tran from Tabletop. Am I speaking with Kathryn?\nYou run Babcia's Kitchen, right?",
            "Tabletop",
            "Babcia's Kitchen",
        ),
        (
            "Good morning, Disney's Lakeshore Family Dentistry. This is Rebecca Lindquist, from Ory's Agental Supply.",
            "Ory's Agental Supply",
            "Disney's Lakeshore Family Dentistry",
        ),
    ],
)
def test_the_seller_and_the_buyers_company_given_the_wrong_way_round_are_swapped(
    text: str, seller: str, buyer: str
) -> None:
    result = grounded(text, seller_company=pair(buyer), company=pair(seller))
    assert result.fields["seller_company"] == seller and result.fields["company"] == buyer
    note = result.evidence["company"]
    assert note["was"] == {"value": seller, "quote": seller} and "the agent is introduced from" in note["reason"]
    assert result.evidence["seller_company"]["was"] == {"value": buyer, "quote": buyer}


def test_companies_stay_where_the_call_names_the_seller_as_the_models_seller() -> None:
    both = "Hi, this is Kevin Tran from Tabletop. I'm Kasia Nowak from Babcia's Kitchen.\nLovely."
    kept = grounded(both, seller_company=pair("Babcia's Kitchen"), company=pair("Tabletop"))
    assert kept.fields["seller_company"] == "Babcia's Kitchen"  # someone introduced from each: nothing to settle
    opening = "Hello from Babcia's Kitchen, Kevin Tran from Tabletop speaking.\nHi."
    stays = grounded(opening, seller_company=pair("Babcia's Kitchen"), company=pair("Tabletop"))
    assert stays.fields["seller_company"] == "Babcia's Kitchen"
    plain = "Hi, this is Kevin Tran from Tabletop.\nYou run Babcia's Kitchen, right?"
    right = grounded(plain, seller_company=pair("Tabletop"), company=pair("Babcia's Kitchen"))
    assert (right.fields["seller_company"], right.fields["company"]) == ("Tabletop", "Babcia's Kitchen")
    assert "reason" not in right.evidence["company"]


# tiny.en, calls-dev d09: the agent's introduction lost, the buyer's own said in full
LOST_INTRODUCTION = (
    "You'll have to noon for the mail saying speaking from lift right material handling.\n"
    "I'm following upon your query. I'm Fatima. Tobias Grünewald here, operations manager at Kessler Cold Storage.\n"
    "Thanks Tobias. Where is your facility located?"
)


def test_an_agent_introduced_from_the_buyers_company_is_the_customer_and_the_other_person_the_agent() -> None:
    people = {"company": pair("Kessler Cold Storage"), "agent_name": pair("Tobias Grünewald")}
    swapped = grounded(LOST_INTRODUCTION, customer_name=pair("Fatima"), **people)
    assert swapped.fields["customer_name"] == "Tobias Grünewald" and swapped.fields["agent_name"] == "Fatima"
    note = swapped.evidence["customer_name"]
    assert note["quote"] == "Tobias Grünewald here, operations manager at Kessler Cold Storage."
    assert "the buyer's person" in note["reason"] and note["was"] == {"value": "Fatima", "quote": "Fatima"}
    assert swapped.evidence["agent_name"]["was"] == {"value": "Tobias Grünewald", "quote": "Tobias Grünewald"}
    alone = grounded(LOST_INTRODUCTION, **people)  # no one else given: the agent is not known, so not given
    assert alone.fields["customer_name"] == "Tobias Grünewald" and alone.fields["agent_name"] is None
    assert alone.evidence["agent_name"]["reason"].startswith("dropped: introduced from the buyer's company")
    right = grounded(LOST_INTRODUCTION, agent_name=pair("Fatima"), customer_name=pair("Tobias Grünewald"))
    assert right.fields["agent_name"] == "Fatima" and right.fields["customer_name"] == "Tobias Grünewald"


def test_a_company_the_call_opens_calling_from_is_the_sellers_and_moves_no_one() -> None:
    """tiny.en, calls-dev d08: the model took the seller ("Tabletop") for the buyer's company; its agent, introduced
    from it, stays the agent."""
    text = "Hi, this is Kevin Tran from Tabletop. Am I speaking with Katarzyna Wiśniewska?\nYes, at Babcia's Kitchen."
    given = {"agent_name": pair("Kevin Tran"), "customer_name": pair("Katarzyna Wiśniewska")}
    result = grounded(text, company=pair("Tabletop"), **given)
    assert result.fields["agent_name"] == "Kevin Tran" and result.fields["customer_name"] == "Katarzyna Wiśniewska"
    far = "I'm Kevin Tran, and honestly I have been working here for a long time now with Tabletop."
    assert grounded(far, company=pair("Tabletop"), agent_name=pair("Kevin Tran")).fields["agent_name"] == "Kevin Tran"


@pytest.mark.parametrize(
    "text",
    [
        "Hello, this is Mo Ali from Skyward Sprayers. Is that Greenacre Farms?\nYes.",  # introduced from it
        "T.K. is not wrong with Tuckwell, it's seen a halfman from Sky Farm Bronze.\nYes.",  # "from" it, opening
    ],
)
def test_the_sellers_company_given_as_the_buyers_too_is_the_sellers(text: str) -> None:
    seller = "Skyward Sprayers" if "Skyward" in text else "Sky Farm Bronze"
    result = grounded(text, seller_company=pair(seller), company=pair(seller))
    assert result.fields["seller_company"] == seller and result.fields["company"] is None
    assert "the same as seller_company" in result.evidence["company"]["reason"]


def test_a_location_that_names_a_person_or_the_seller_is_dropped_and_no_person_moves_into_it() -> None:
    text = (
        "Good morning, this is Rebecca Lindqvist from Orisa Dental Supply.\n"
        "Hi Rebecca, this is Doctor Arjun Venkataraman, in Duluth, Minnesota."
    )
    # the model swapped the two people: the customer is moved back, the location stays where it is
    result = grounded(
        text,
        agent_name=pair("Doctor Arjun Venkataraman"),
        seller_company=pair("Orisa Dental Supply"),
        location=pair("Duluth, Minnesota"),
    )
    assert result.fields["customer_name"] == "Doctor Arjun Venkataraman"
    assert result.fields["location"] == "Duluth, Minnesota"
    for wrong in ("Arjun Venkataraman", "Orisa Dental Supply", "Rebecca Lindqvist"):  # a person, the seller
        result = grounded(
            text,
            agent_name=pair("Rebecca Lindqvist"),
            seller_company=pair("Orisa Dental Supply"),
            customer_name=pair("Doctor Arjun Venkataraman"),
            location=pair(wrong),
        )
        assert result.fields["location"] is None, wrong
        assert "which it must differ from" in result.evidence["location"]["reason"]


@pytest.mark.parametrize(
    ("text", "customer"),
    [
        (
            "Good afternoon, this is Priya Raman calling from Northlight Solar. Am I speaking with Callum Fairbairn?\n"
            "Yes, speaking. Hi Priya.",
            "Callum Fairbairn",
        ),
        (
            "Hi, it's March already. Fatima Al-Sayed speaking, from LiftRight Material Handling.\n"
            "Tobias Grünewald here, operations manager at Kessler Cold Storage.",
            "Tobias Grünewald",
        ),
        ("Hello, this is Mo Ali from Skyward Sprayers. Is that Doctor Rhiannon Pike?\nYes.", "Rhiannon Pike"),
        (
            "Hi there, it's Mo Ali from Skyward Sprayers. I'm looking for Eilidh MacAskill.\nThat's me.",
            "Eilidh MacAskill",
        ),
    ],
)
def test_a_customer_given_as_the_agent_is_the_other_person_the_call_names(text: str, customer: str) -> None:
    agent = "Priya Raman" if "Priya" in text else "Fatima Al-Sayed" if "Fatima" in text else "Mo Ali"
    result = grounded(text, agent_name=pair(agent), customer_name=pair(agent))
    assert result.fields["customer_name"] == customer
    note = result.evidence["customer_name"]
    assert note["found"] and customer in note["quote"] and note["quote"] in text.replace("\n", " ")
    assert note["was"] == {"value": agent, "quote": agent} and "the other person" in note["reason"]


def test_no_other_person_no_customer_and_a_given_customer_stays() -> None:
    text = "Hi, this is Mo Ali from Skyward Sprayers. It's Thursday, is that Skyward Sprayers' account?\nYes."
    assert (
        grounded(text, agent_name=pair("Mo Ali"), seller_company=pair("Skyward Sprayers")).fields["customer_name"]
        is None
    )  # the agent, the day and the seller are no one else
    text = "Hi, this is Mo Ali from Skyward Sprayers. Am I speaking with Per Lund?\nYes, Per Lund speaking."
    kept = grounded(text, agent_name=pair("Mo Ali"), customer_name=pair("Per Lund", "Yes, Per Lund speaking"))
    assert kept.fields["customer_name"] == "Per Lund" and "reason" not in kept.evidence["customer_name"]


def test_a_buyer_who_declines_has_no_next_step_nor_timeline() -> None:
    text = "We signed with someone else last month. Maybe check back after harvest.\nUnderstood."
    fields = {
        "timeline": pair("last month", "We signed with someone else last month"),
        "next_steps": pair("check back after harvest", "Maybe check back after harvest"),
    }
    declined = grounded(text, sentiment=pair("negative", "We signed with someone else"), **fields)
    assert declined.fields["timeline"] is None and declined.fields["next_steps"] is None
    assert declined.evidence["next_steps"]["reason"] == "dropped: null when sentiment is 'negative'"
    assert declined.evidence["next_steps"]["value"] == "check back after harvest"  # what the model said stays
    kept = grounded(text, sentiment=pair("neutral", "Understood"), **fields)
    assert kept.fields["timeline"] == "last month" and kept.fields["next_steps"] == "check back after harvest"


@pytest.mark.parametrize("when", [[], "negative", {"no_such_field": None}, {}, {"sentiment": ["negative"]}])
def test_odd_null_when_annotations_change_nothing(when: Any) -> None:
    schema = copy.deepcopy(BUNDLED.schema)
    schema["properties"]["next_steps"]["x-null-when"] = when
    text = "Let's book the demo for Friday.\nSure."
    answer_ = answer(next_steps=pair("demo on Friday", "book the demo for Friday"), sentiment=pair("negative", "Sure"))
    transcript = Transcript.of([Segment(line, None, None) for line in text.split("\n")])
    assert ground(answer_, ExtractionSchema.from_dict(schema), transcript).fields["next_steps"] == "demo on Friday"


def test_a_value_made_of_the_calls_own_phrases_beside_a_paraphrased_quote_is_kept() -> None:
    text = (
        "The next step is a free roof survey. One of our surveyors could come out on Thursday morning.\n"
        "Lovely, I'll send you a confirmation email today with the surveyor's name."
    )
    paraphrase = (
        "The next step is a free roof survey. Priya will send her a confirmation email with the surveyor's name."
    )
    value = "free roof survey, surveyor's name, confirmation email"
    result = grounded(text, next_steps=pair(value, paraphrase))
    assert result.fields["next_steps"] == value
    note = result.evidence["next_steps"]
    assert note["quote_found"] is False and note["passage"] == "free roof survey" and note["segments"] == [0, 0]
    # a phrase the call does not say, a one-word phrase, or a quote about something else: dropped as before
    for wrong, quote in (
        ("free roof survey, a discount voucher", paraphrase),
        ("free roof survey, Thursday", "free roof survey on Thursday, as said"),
        (value, "We talked about the weather and the cricket"),
    ):
        assert grounded(text, next_steps=pair(wrong, quote)).fields["next_steps"] is None, wrong


def test_a_mangled_quote_beside_a_value_the_call_says_word_for_word_keeps_the_value() -> None:
    text = "Hi, this is Oluwaseun Adeyemi. The surname Adeyemi.\nAnd we have a budget of nine thousand pounds."
    result = grounded(
        text,
        customer_name=pair("Oluwaseun Adeyemi", "Oluwaseun Adeyemi Adeyemi Adeyemi"),
        company=pair("Adeyemi Holdings", "Adeyemi Holdings Ltd"),  # not said: still dropped
        location=pair("Leeds", "we are in Leeds"),  # neither quote nor value in the call: dropped
    )
    assert result.fields["customer_name"] == "Oluwaseun Adeyemi"
    assert "the value it holds is, word for word" in result.evidence["customer_name"]["reason"]
    assert result.evidence["customer_name"]["passage"] == "Oluwaseun Adeyemi"
    assert result.fields["company"] is None and result.fields["location"] is None


def test_an_item_listed_twice_is_kept_once() -> None:
    text = "We want home batteries. Home batteries, yes, and solar panels."
    result = grounded(
        text,
        products_of_interest=[pair("home batteries"), pair("Home Batteries!", "Home batteries"), pair("solar panels")],
    )
    assert result.fields["products_of_interest"] == ["home batteries", "solar panels"]
    assert result.evidence["products_of_interest"][1]["reason"] == "dropped: listed already"
    assert result.dropped == 1


@pytest.mark.parametrize(
    "annotations",
    [
        {"x-differs-from": 7, "x-introduced-from": ["seller"], "x-corrections": "yes", "x-full-name": 1},
        {"x-differs-from": [None, 3, "no_such_field", "seller"], "x-introduced-from": "no_such_field"},
        {"x-differs-from": {"a": "b"}, "x-introduced-from": None},
    ],
)
def test_odd_annotations_in_a_users_schema_change_nothing_and_break_nothing(annotations: dict[str, Any]) -> None:
    """A schema file is outside input: annotations of the wrong type or naming no field are ignored."""
    schema = ExtractionSchema.from_dict(
        {
            "title": "odd",
            "type": "object",
            "additionalProperties": False,
            "required": ["customer_name", "seller"],
            "properties": {
                "customer_name": {"type": ["string", "null"], **annotations},
                "seller": {"type": ["string", "null"]},
            },
        }
    )
    call = Transcript.of([Segment("It's Mo Ali from Skyward Sprayers. Is that Per Lund, not Per Lind?", None, None)])
    result = ground(
        {"customer_name": pair("Per Lund"), "seller": pair("Skyward Sprayers")},
        schema,
        call,
    )
    assert result.fields == {"customer_name": "Per Lund", "seller": "Skyward Sprayers"}


def test_an_agent_introduced_with_a_role_keeps_the_roles_the_model_gave() -> None:
    # The model gave the seller as the buyer's company too; the agent says a role before the seller's name. The
    # seller stays the seller (someone is introduced from it), the buyer's company is dropped as the seller, and the
    # agent is not taken for the buyer's person (seen from tiny.en: Marisol Quispe and Henrik made to swap).
    text = (
        "Good morning, my name is Henrik Nal, I'm an application engineer with Mentor Pumps, calling from our "
        "office in Rotterdam, is this Marisol Quispe?\nYes, this is Marisol, I'm the mine superintendent."
    )
    result = grounded(
        text,
        agent_name=pair("Henrik Nal", "my name is Henrik Nal"),
        seller_company=pair("Mentor Pumps"),
        customer_name=pair("Marisol Quispe"),
        company=pair("Mentor Pumps"),
    )
    assert (result.fields["agent_name"], result.fields["customer_name"]) == ("Henrik Nal", "Marisol Quispe")
    assert result.fields["seller_company"] == "Mentor Pumps" and result.fields["company"] is None


def test_a_customer_given_as_the_organisation_someone_is_from_is_the_person_who_names_themselves() -> None:
    text = (
        "Good morning, Lakeshore Family Dentistry. This is the American Inc. Missed from Orange Agental Supply.\n"
        "Hi, Rebecca. This is Dr. Arjun Venkataraman. Thanks for calling back."
    )
    result = grounded(
        text,
        agent_name=pair("Rebecca", "Hi, Rebecca."),
        seller_company=pair("Lakeshore Family Dentistry"),
        customer_name=pair("Orange Agental Supply", "Missed from Orange Agental Supply."),
    )
    assert result.fields["customer_name"] == "Arjun Venkataraman"
    note = result.evidence["customer_name"]
    assert note["was"] == {"value": "Orange Agental Supply", "quote": "Missed from Orange Agental Supply."}
    # A person the call says something is from is still a person: only "<Name> from <value>" names a company.
    person = grounded(
        "Hi, this is Priya Raman from Northlight Solar.\nA message from Callum Fairbairn, yes, that's me.",
        agent_name=pair("Priya Raman"),
        seller_company=pair("Northlight Solar"),
        customer_name=pair("Callum Fairbairn"),
    )
    assert person.fields["customer_name"] == "Callum Fairbairn"


def test_a_name_said_twice_is_the_recogniser_looping_and_the_person_who_names_themselves_is_the_customer() -> None:
    """tiny.en, calls-dev d05 in float32: asked to say her name again, the buyer was heard as a loop."""
    text = (
        "Hello, this is Darnell with a current wind route site telematics. May I speak to the fleet manager?\n"
        "Speaking, Kgomotso Mahlangu.\nSorry, can you say your name once more?\n"
        "K-Kgomotso K-Kgomotso K-Kgomotso\nThank you, Kgomotso."
    )
    looped = pair("K-Kgomotso K-Kgomotso K-Kgomotso")
    result = grounded(text, agent_name=pair("Darnell"), customer_name=looped)
    assert result.fields["customer_name"] == "Kgomotso Mahlangu"
    note = result.evidence["customer_name"]
    assert note["quote"] == "Speaking, Kgomotso Mahlangu" and note["was"]["value"] == looped["value"]
    # Only a person's name (x-full-name): a place may say a word twice.
    place = "We farm near Wagga Wagga.\nLovely."
    assert grounded(place, location=pair("Wagga Wagga")).fields["location"] == "Wagga Wagga"
    # "Speaking," before a word that is no name names no one.
    quiet = "Hello, this is Darnell from RouteSight.\nSpeaking, yes."
    nobody = grounded(quiet, agent_name=pair("Darnell"), seller_company=pair("RouteSight"))
    assert nobody.fields["customer_name"] is None
