"""The buyer's organisation (calls/organisations.py): a person is none; where the model named another's, the call
says which. Alone and through `ground`, on transcripts as tiny.en heard calls-dev's recordings."""

from __future__ import annotations

import time

import pytest

from aoai_gateway.calls.organisations import move_organisations, unname_people
from aoai_gateway.calls.schema import ExtractionSchema

from .test_roles import grounded, pair

BUNDLED = ExtractionSchema.load(None)
PROPERTIES = BUNDLED.schema["properties"]

# As tiny.en heard "Hi Fatima. Tobias Grünewald here, operations manager at Kessler Cold Storage."
FORKLIFTS = (
    "You'll have to noon for the mail saying speaking from LiftRight Material Handling.\n"
    "I'm Fatima.\n"
    "Tomorrow's room will be a operations manager at Kessler Cold Storage.\n"
    "We'll be in Kitchener, Ontario, right off the highway."
)
DRONES = (
    "T.K. is not Bronwyn Tuckwell, it's Lena Hoffmann from Sky Farm Drones.\n"
    "Yeah, Bronwyn Tuckwell, is this about the quote?\n"
    "I wanted to walk you through the spraying drone quote we sent on Monday for Tuckwell Pastoral."
)


@pytest.mark.parametrize(
    ("value", "person"),
    [
        ("Dr. Arjun Venkataraman", True),
        ("Doctor Arjun Venkataraman", True),
        ("Mrs Okafor", True),
        ("dr arjun", False),  # a title before a capitalised name: as a call's words are written
        ("Drummond Logistics", False),
        ("Mr", False),
        ("Prof. Ada Lovelace", True),
    ],
)
def test_a_value_starting_with_a_persons_title_is_no_organisation(value: str, person: bool) -> None:
    fields = {"company": value}
    evidence = {"company": pair(value)}
    assert unname_people(fields, evidence, PROPERTIES) == int(person)
    assert (fields["company"] is None) is person
    if person:
        assert evidence["company"]["reason"] == "dropped: a person, by their title, not an organisation"
        assert evidence["company"]["was"] == pair(value)


def test_through_ground_a_titled_person_given_as_the_company_is_dropped() -> None:
    text = "Hi, Rebecca. This is Dr. Arjun Venkataraman. Thanks for calling back."
    result = grounded(text, company=pair("Dr. Arjun Venkataraman"))
    assert result.fields["company"] is None and "a person" in result.evidence["company"]["reason"]


def test_the_organisation_the_buyer_is_at_replaces_another_partys() -> None:
    # The model gave the agent as the company: dropped, and the call says where the buyer works.
    result = grounded(FORKLIFTS, agent_name=pair("Fatima"), company=pair("Fatima"))
    assert result.fields["company"] == "Kessler Cold Storage"
    note = result.evidence["company"]
    assert note["quote"] == "Tomorrow's room will be a operations manager at Kessler Cold Storage."
    assert note["was"] == pair("Fatima") and "'Fatima' was dropped" in note["reason"]
    assert note["quote_found"] is False  # the call's words, not the model's quote
    assert note["segments"] == [2, 2]  # placed in the transcript like every settled value
    # The seller given as the company: the organisation a quote is for.
    drones = grounded(
        DRONES,
        agent_name=pair("Lena Hoffmann"),
        seller_company=pair("Sky Farm Drones"),
        company=pair("Sky Farm Drones"),
        customer_name=pair("Bronwyn Tuckwell"),
    )
    assert drones.fields["company"] == "Tuckwell Pastoral"
    assert drones.fields["customer_name"] == "Bronwyn Tuckwell"  # said again after "not": the last word stands
    # A quote that is not in the call is dropped too: then the organisation the call says.
    made_up = grounded(FORKLIFTS, company=pair("Kessler Logistics", "at Kessler Logistics"))
    assert made_up.fields["company"] == "Kessler Cold Storage"


def test_no_organisation_where_the_model_gave_none_or_the_call_names_only_others() -> None:
    # The model gave none: a private buyer stays one.
    assert grounded(FORKLIFTS).fields["company"] is None
    # Only the seller, the agent, a person the call addresses, a place, a day, a thing named: nothing taken.
    text = (
        "Hi, this is Jordan Blake with ClearSpring Water Systems, calling for ClearSpring Water.\n"
        "Is this for Xochitl Ramirez?\n"
        "Am I speaking with Xochitl Ramirez?\n"
        "We just bought a house near Yuma Desert, in Yuma.\n"
        "It can't split checks for TikTok payments.\n"
        "We open at Easter Monday.\n"
        "We want it at Yuma Desert."
    )
    result = grounded(
        text,
        seller_company=pair("ClearSpring Water Systems"),
        company=pair("ClearSpring Water Systems"),
        location=pair("Yuma Desert"),
    )
    assert result.fields["company"] is None
    assert "seller_company" in result.evidence["company"]["reason"]
    # One capitalised word after "at" is as often a place: not taken.
    assert grounded("I'm the buyer at Leeds.", company=pair("Acme", "nowhere")).fields["company"] is None


def test_an_organisation_before_its_place_and_after_you_run() -> None:
    hotel = "This is Niamh from Inkwell Print.\nHi Niamh, I'm the office manager at Alder Court Hotel in Galway."
    agent = {"agent_name": pair("Niamh"), "seller_company": pair("Inkwell Print")}
    assert grounded(hotel, **agent, company=pair("Niamh")).fields["company"] == "Alder Court Hotel"
    kitchen = "This is Kevin from TableTap.\nMy apologies, Katarzyna. You run Babcia's Kitchen, right?"
    agent = {"agent_name": pair("Kevin"), "seller_company": pair("TableTap")}
    assert grounded(kitchen, **agent, company=pair("TableTap")).fields["company"] == "Babcia's Kitchen"


def test_a_customer_the_call_says_as_an_organisation_is_the_company() -> None:
    # As int8 tiny.en heard d12: "Bronwyn" lost, and the model gave the buyer's organisation as the customer.
    heard = (
        "T.K. is not wrong with Tuckwell, it's Lena Hoffmann from Sky Farm Drones.\n"
        "I wanted to walk you through the quote we sent on Monday for Tuckwell Pastoral."
    )
    result = grounded(
        heard,
        seller_company=pair("Sky Farm Drones"),
        company=pair("Sky Farm Drones"),
        customer_name=pair("Tuckwell Pastoral"),
    )
    assert result.fields["customer_name"] is None and result.fields["company"] == "Tuckwell Pastoral"
    assert "an organisation, as the call says it" in result.evidence["customer_name"]["reason"]
    # A person the call addresses is a person, whatever "for" or "at" says before their name elsewhere.
    looked_for = "I'm looking for Eilidh MacAskill.\nThat's me. I have a message for Eilidh MacAskill."
    person = grounded(looked_for, customer_name=pair("Eilidh MacAskill"))
    assert person.fields["customer_name"] == "Eilidh MacAskill" and person.fields["company"] is None
    # Alone: the company the model gave stays; the person field is still dropped.
    fields = {"customer_name": "Tuckwell Pastoral", "company": "Wagga Farms"}
    evidence: dict[str, object] = {}
    assert move_organisations(fields, evidence, PROPERTIES, heard) == 1
    assert fields == {"customer_name": None, "company": "Wagga Farms"}
    # Only the organisation's whole name: a surname its name holds is no organisation ("Tuckwell").
    surname = {"customer_name": "Tuckwell", "company": None}
    assert move_organisations(surname, {}, PROPERTIES, heard) == 0 and surname["customer_name"] == "Tuckwell"
    # A schema whose related property is no object (JSON Schema allows `true`) is read, not crashed on.
    odd = {"customer_name": {"x-full-name": True, "x-differs-from": ["company"]}, "company": True}
    moved = {"customer_name": "Tuckwell Pastoral", "company": None}
    assert move_organisations(moved, {}, odd, heard) == 1 and moved["company"] is None
    # The agent's name (`x-introduced-from`) is never moved.
    agent = {"agent_name": "Tuckwell Pastoral"}
    assert move_organisations(agent, {}, PROPERTIES, heard) == 0 and agent["agent_name"] == "Tuckwell Pastoral"


def test_hostile_transcripts_stay_cheap() -> None:
    many = "We work at Aaa Bbb Ccc Ddd Eee " * 5_000 + "for Kessler Cold Storage."
    began = time.process_time()
    assert grounded(many, company=pair("Fatima", "nowhere")).fields["company"] == "Kessler Cold Storage"
    assert time.process_time() - began < 20  # generous: a busy machine
