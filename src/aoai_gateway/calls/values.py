"""What a value of each kind must state, for the grounding's checks (grounding.py):

    states_amount("twelve grand")                       # True: a budget must state an amount (`x-amount`)
    states_time("understood")                           # False: a timeline must name a time (`x-time`)
    proper_noun("alesund", "the harbour in Alesund")    # True: the call capitalises it (`x-proper-noun`)
    count_or_price("400 cubic meters per hour")         # True: no product's name (`x-no-amounts`)
    parts(["forklifts", "electric forklifts"])          # [(0, "electric forklifts")]: said already
    spending(text)                                      # the sentences stating an amount to spend
    to_spend("we had about twenty grand to spend", "$48,000")   # "$20,000"
    currency("£200", "two hundred dollars a month")     # "$200"

Amounts are read by numbers.py, in digits or words. An amount is the buyer's to spend where its sentence says so
("put aside", "approved up to", "budgeted", "to spend") and states money, not a count: a currency, a scale ("twenty
grand", "24K") or a figure of a hundred or more ("twelve of our engineers will spend a lot of time" is a count).
"""

from __future__ import annotations

import re
from typing import Any

from .numbers import amounts
from .words import MONTHS_AND_DAYS, sentences, words

__all__ = [
    "count_or_price",
    "currency",
    "listed",
    "parts",
    "proper_noun",
    "spending",
    "states_amount",
    "states_money",
    "states_time",
    "to_spend",
]

# What a call says for a currency -> the symbol a value writes it with.
_CURRENCIES = {
    **dict.fromkeys(("$", "dollar", "dollars", "bucks"), "$"),
    **dict.fromkeys(("£", "pound", "pounds", "quid", "sterling"), "£"),
    **dict.fromkeys(("€", "euro", "euros"), "€"),
}
_SYMBOLS = "".join(sorted(set(_CURRENCIES.values())))
_CURRENCY_WORD = re.compile(rf"[{_SYMBOLS}]|\b(?:{'|'.join(w for w in _CURRENCIES if w.isalpha())})\b", re.IGNORECASE)
_SCALE_WORD = re.compile(r"\b(?:hundreds?|thousands?|millions?|billions?|grand)\b", re.IGNORECASE)
# Words that make an amount the buyer's to spend: "put aside", "approved up to", "budgeted", "to spend".
_SPENDING = re.compile(
    r"\b(?:budget\w*|spend\w*|set\s+aside|put\s+aside|afford|approved|allocated|in\s+mind|up\s+to|no\s+more\s+than"
    r"|at\s+most)\b",
    re.IGNORECASE,
)
_PERIOD = re.compile(r"\b(?:a|per|each|every)\s+(month|year|week|quarter)\b", re.IGNORECASE)
_TIME_WORDS = MONTHS_AND_DAYS | frozenset(
    {"jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "weekend", "today"}
    | {"tonight", "tomorrow", "yesterday", "morning", "afternoon", "evening", "noon", "midday", "day", "days"}
    | {"week", "weeks", "fortnight", "fortnights", "month", "months", "quarter", "quarters", "year", "years", "hour"}
    | {"hours", "spring", "summer", "autumn", "fall", "winter", "season", "christmas", "easter", "holidays"}
    | {"holiday", "soon", "now", "asap", "immediately", "yearly", "annually", "monthly", "weekly", "fy", "q1", "q2"}
    | {"q3", "q4"}
)
_MAX_ITEM_WORDS = 12  # a list item longer than this is no short name: its runs are not collected


def states_amount(value: str) -> bool:
    """Whether `value` states an amount, exact ("$12,000", "twelve grand") or rough ("a few thousand pounds")."""
    return bool(amounts(value)) or _SCALE_WORD.search(value) is not None


def states_time(value: str) -> bool:
    """Whether `value` names a time: a number, a month, a day, a season, a unit of time, "soon", "now"; a unit after
    "every", "each" or "per" is how often, not when ("don't call every day")."""
    said = words(value)[0]
    return any(
        (word in _TIME_WORDS and (at == 0 or said[at - 1] not in _HOW_OFTEN)) or any(char.isdigit() for char in word)
        for at, word in enumerate(said)
    ) or bool(amounts(value))


_HOW_OFTEN = frozenset({"every", "each", "per"})


def proper_noun(value: str, passage: str) -> bool:
    """Whether `passage` says a word of `value` that is capitalised, as written or where `passage` says it inside a
    sentence (a sentence's first word is capitalised whatever it is): a place or an organisation the quote names,
    not one put beside it ("Brightfield LED's facility" from "the facility next to the expo"); a month or a day is
    no place ("Monday")."""
    written, where = words(value)
    found, spans = words(passage)
    said = set(written).intersection(found) - MONTHS_AND_DAYS
    if any(word in said and value[start].isupper() for word, (start, _) in zip(written, where, strict=True)):
        return True
    return any(
        word in said and passage[start].isupper() and passage[:start].rstrip()[-1:] not in ("", ".", "?", "!")
        for word, (start, _) in zip(found, spans, strict=True)
    )


def repeats_a_word(name: str) -> bool:
    """Whether `name` says one word twice ("K-Kgomotso K-Kgomotso K-Kgomotso"): speech recognition repeating itself
    (a place may, "Wagga Wagga"; a person's name as heard, hardly ever)."""
    said = words(name)[0]
    return len(set(said)) < len(said)


def count_or_price(item: str) -> bool:
    """Whether a list item is a quantity or a price rather than the name of a thing: it starts with a number in
    digits ("400 cubic meters per hour", "3,000 hectares") or states an amount of money ("48,000 dollars")."""
    said = words(item)[0]
    if said and said[0].isdigit():
        return True
    return _CURRENCY_WORD.search(item) is not None and bool(amounts(item))


def listed(item: Any, kept: list[Any], seen: set[tuple[str, ...]]) -> bool:
    """Whether `item` is among `kept`, as the grounding compares words (case, accents, punctuation aside); a string
    not yet listed is added to `seen`, the words of the strings kept."""
    if not isinstance(item, str):
        return item in kept
    said = tuple(words(item)[0])
    if said in seen:
        return True
    seen.add(said)
    return False


def parts(items: list[Any]) -> list[tuple[int, str]]:
    """The items whose words are a run of a longer item's ("forklifts" in "electric forklifts"), in order, each with
    that longer item: the list names it already."""
    said = [tuple(words(item)[0]) if isinstance(item, str) else () for item in items]
    # Every shorter run of each item's words, with the first item holding it: items are a few words, so this is
    # linear in the list, where comparing each pair would be quadratic in a hostile answer's thousands of items.
    within: dict[tuple[str, ...], int] = {}
    for index, outer in enumerate(said):
        if len(outer) > _MAX_ITEM_WORDS:
            continue
        for size in range(1, len(outer)):
            for at in range(len(outer) - size + 1):
                within.setdefault(outer[at : at + size], index)
    return [(index, items[within[inner]]) for index, inner in enumerate(said) if inner and inner in within]


def states_money(sentence: str) -> bool:
    """Whether `sentence` states an amount of money, not a count: a currency, a scale or a figure of 100 or more."""
    found = amounts(sentence)
    return bool(found) and (
        _CURRENCY_WORD.search(sentence) is not None or _SCALE_WORD.search(sentence) is not None or max(found) >= 100
    )


def spending(text: str) -> list[tuple[int, int]]:
    """Where the sentences of `text` lie that state an amount of money as the buyer's to spend."""
    return [
        (start, end)
        for start, end in sentences(text)
        if _SPENDING.search(text, start, end) and states_money(text[start:end])
    ]


def to_spend(sentence: str, value: str) -> str:
    """The amount `sentence` states to spend, as a value: the largest it states, with `value`'s currency symbol
    unless the sentence names another, and its period ("a month") where it says one."""
    amount = max(amounts(sentence))
    symbol = next((char for char in value if char in _SYMBOLS), "")
    figure = f"{amount:,.0f}" if amount.is_integer() else f"{amount:,.2f}"
    period = _PERIOD.search(sentence)
    return currency(symbol + figure + (f" a {period[1].lower()}" if period else ""), sentence)


def currency(value: str, passage: str) -> str:
    """`value` with its currency symbol replaced by the one currency its passage names, if it names one."""
    named = {_CURRENCIES[word.lower()] for word in _CURRENCY_WORD.findall(passage)}
    written = {symbol for symbol in _SYMBOLS if symbol in value}
    if len(named) != 1 or not written or written == named:
        return value
    (symbol,) = named
    return re.sub(f"[{_SYMBOLS}]", symbol, value)
