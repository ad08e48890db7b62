"""Where the buyer is (calls/places.py): not where the caller calls from; where the call says the buyer's
organisation is. Alone and through `ground`."""

from __future__ import annotations

import time

import pytest

from aoai_gateway.calls.places import callers_place, place_of

from .test_roles import grounded, pair

PUMPS = (
    "Good morning, my name is Henrik Dahl, I'm an applications engineer with Vantor Pumps, calling from our office "
    "in Rotterdam. Is this Marisol Quispe?\n"
    "Yes, this is Marisol. I'm the maintenance superintendent at Minera Cerro Azul, in Antofagasta, Chile."
)


@pytest.mark.parametrize(
    ("text", "place"),
    [
        (PUMPS, "Rotterdam"),
        ("Hi, it's Priya ringing from Northlight Solar in Leeds. Is that Callum?", "Leeds"),
        ("Hi, this is Priya calling from Northlight Solar. Yes, we're in Leeds.", None),  # not said as the caller's
        ("We're opening a third operatory here in Duluth, Minnesota.", None),  # the buyer's "here"
        ("Hello. " * 60 + "I'm calling from our office in Rotterdam.", None),  # past the opening
    ],
)
def test_the_callers_place_is_the_one_the_opening_calls_from(text: str, place: str | None) -> None:
    assert callers_place(text) == place


def test_the_callers_place_is_not_the_buyers_and_the_buyers_organisation_says_where_they_are() -> None:
    result = grounded(
        PUMPS,
        agent_name=pair("Henrik Dahl"),
        seller_company=pair("Vantor Pumps"),
        company=pair("Minera Cerro Azul in Antofagasta, Chile", "Minera Cerro Azul, in Antofagasta, Chile"),
        location=pair("Rotterdam", "calling from our office in Rotterdam"),
    )
    assert result.fields["location"] == "Antofagasta, Chile"
    note = result.evidence["location"]
    assert note["quote"] == "I'm the maintenance superintendent at Minera Cerro Azul, in Antofagasta, Chile."
    assert note["was"] == pair("Rotterdam", "calling from our office in Rotterdam")
    assert note["quote_found"] is False and "where the call says" in note["reason"] and note["segments"] == [1, 1]
    # With no place said for the buyer's organisation, the caller's place is dropped all the same.
    alone = grounded(
        PUMPS.split("\n")[0], seller_company=pair("Vantor Pumps"), location=pair("Rotterdam", "office in Rotterdam")
    )
    assert alone.fields["location"] is None
    assert "the caller's own place" in alone.evidence["location"]["reason"] and alone.dropped == 1
    # A null place where the call says where the buyer's organisation is based.
    based = grounded("We're Kessler Cold Storage, based in Kitchener, Ontario.", company=pair("Kessler Cold Storage"))
    assert based.fields["location"] == "Kitchener, Ontario"
    # The buyer's own place stays, and so does a place said after the organisation in lower case only.
    kept = grounded(PUMPS, location=pair("Antofagasta, Chile"))
    assert kept.fields["location"] == "Antofagasta, Chile" and "reason" not in kept.evidence["location"]
    lower = grounded("We're Kessler Cold Storage, in the north.", company=pair("Kessler Cold Storage"))
    assert lower.fields["location"] is None


def test_hostile_transcripts_stay_cheap() -> None:
    text = "Aaa Bbb, in " * 20_000 + "Kessler Cold Storage, in Kitchener."
    began = time.process_time()
    assert grounded(text, company=pair("Kessler Cold Storage")).fields["location"] == "Kitchener"
    # An organisation is matched literally, never as a pattern.
    assert place_of("We are (.*)+$ Ltd, in Leeds.", "(.*)+$ Ltd") == ("Leeds", "We are (.*)+$ Ltd, in Leeds.")
    assert place_of("We are Acme Ltd, in Leeds.", "(.*)+$ Ltd") is None
    assert time.process_time() - began < 20  # generous: a busy machine
