"""Transcripts normalised as the reference's manifest reader normalises them (``english_cleaners``
and its punctuation table), so that WER compares what the reference compares.

In order: ASCII transliteration (unidecode), lower case, numbers in words (inflect, with the
reference's rules for years, leading zeros, long numbers, ordinals, decimals, money and times),
the abbreviations, every punctuation mark that is not a label (and not ``+`` or ``&``) made a
space, ``&`` -> " and ", ``+`` -> " plus ", runs of white space made one, the ends stripped, and
every character that is not a label dropped.
"""

from __future__ import annotations

import re
import string
from functools import cache

ABBREVIATIONS = {"mrs": "misess", "mr": "mister", "dr": "doctor", "st": "saint", "co": "company", "jr": "junior",
                 "maj": "major", "gen": "general", "drs": "doctors", "rev": "reverend", "lt": "lieutenant",
                 "hon": "honorable", "sgt": "sergeant", "capt": "captain", "esq": "esquire", "ltd": "limited",
                 "col": "colonel", "ft": "fort"}
_ABBREVIATION = [(re.compile(rf"\b{short}\.", re.IGNORECASE), long) for short, long in ABBREVIATIONS.items()]


@cache
def _engine():
    import inflect

    return inflect.engine()


def _words(number, **options) -> str:
    return _engine().number_to_words(number, **options)


def _money(match: re.Match, unit: str, subunit: str) -> str:
    parts = match.group(1).split(".")
    if len(parts) > 2:
        return f"{match.group(1)} {unit}s"
    whole, cents = (int(p) if p else 0 for p in (parts + [""])[:2])
    named = [f"{n} {name if n == 1 else name + 's'}" for n, name in ((whole, unit), (cents, subunit)) if n]
    return ", ".join(named) if named else f"zero {unit}s"


def _number(match: re.Match) -> str:
    digits = match.group(0)
    if digits[0] == "0":
        return _words(digits, andword="", group=1)
    n = int(digits)
    if 1000 < n < 3000:
        if n == 2000:
            return "two thousand"
        if 2000 < n < 2010:
            return "two thousand " + _words(n % 100)
        if n % 100 == 0:
            return _words(n // 100) + " hundred"
        return _words(n, andword="", zero="oh", group=2).replace(", ", " ")
    if n > 1000000000 and n % 10000 != 0:
        return _words(n, andword="", group=1)
    return _words(n, andword="")


def _time(match: re.Match) -> str:
    hours, minutes = match.group(1), int(match.group(2))
    return _words(hours) if minutes == 0 else f"{_words(hours)} {_words(match.group(2))}"


def numbers_in_words(text: str) -> str:
    text = re.sub(r"([0-9][0-9,]+[0-9])", lambda m: m.group(1).replace(",", ""), text)
    text = re.sub(r"£([0-9,]*[0-9]+)", r"\1 pounds", text)
    text = re.sub(r"\$([0-9.,]*[0-9]+)", lambda m: _money(m, "dollar", "cent"), text)
    text = re.sub(r"([0-9]+\.[0-9]+)", lambda m: m.group(1).replace(".", " point "), text)
    text = re.sub(r"[0-9]+(st|nd|rd|th)", lambda m: _words(m.group(0)), text)
    text = re.sub(r"[0-9]+", _number, text)
    return re.sub(r"([0-9]{1,2}):([0-9]{2})", _time, text)


def normalize(text: str, labels: str) -> str:
    """A transcript as the reference's manifest reader makes it, before it maps it to labels."""
    from unidecode import unidecode

    punctuation = "".join(c for c in string.punctuation if c not in "+&" and c not in labels)
    text = numbers_in_words(unidecode(text).lower())
    for pattern, long in _ABBREVIATION:
        text = pattern.sub(long, text)
    text = text.translate(str.maketrans(punctuation, " " * len(punctuation)))
    text = re.sub(r"\s+", " ", text.replace("&", " and ").replace("+", " plus ")).strip()
    return "".join(c for c in text if c in labels)
