"""Normalised forms of names and texts, kept alongside what was given.

`search_text` folds case, accents and punctuation: the `q` filter (app/fulltext.py) matches a
word of a script written without spaces (Chinese, Japanese, Thai) as a substring of it, where
the full-text index has no word boundaries to go by.
`match_name` goes further for entity resolution: it also drops a leading "The", honorifics and
post-nominals ("Rt Hon", "MP", "Lord", "Baroness", "Dr", "OBE", …).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from confusable_homoglyphs import confusables

_WORDS = re.compile(r"[^\W_]+")  # letters and digits of every script; "_" and the rest separate

# Words that decorate a name without identifying anyone (compared after folding): titles are
# dropped only from the start of a name ("The Rt Hon Sir Ed Davey"), post-nominals only from its
# end ("… MP", "… OBE"), so "Human Right Project" or "Earl Street Trust" keep their words.
TITLES = frozenset(
    """the rt hon right honourable honorable rev revd reverend very most mr mrs miss ms mx dr prof
    professor sir dame lord lady baroness baron viscount viscountess earl countess marquess
    marchioness duke duchess bishop archbishop cllr councillor""".split()  # noqa: SIM905
)
POSTNOMINALS = frozenset(
    """mp mps msp ms mla mep am td mhk obe mbe cbe kbe dbe kcb kcmg gcmg gcb kg kt kc qc pc frs frsa
    fba frse fmedsci freng jp dl bt bart esq phd mp""".split()  # noqa: SIM905
)
HONORIFICS = TITLES | POSTNOMINALS


def fold(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form: 'Amnesty Int’l (UK)' -> 'amnesty int l uk'.
    Cyrillic and Greek letters that look Latin are read as Latin in a word that mixes them with
    Latin letters, or in a name written in Latin otherwise ('Аmnesty' with a Cyrillic 'А')."""
    if text.isascii():  # nothing to decompose: the fast path for most names
        return " ".join(_WORDS.findall(text.casefold()))
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_unmixed(_WORDS.findall(stripped.casefold())))


_LATIN = re.compile(r"[a-z]")


def _unmixed(words: list[str]) -> list[str]:
    """Words with their Latin look-alikes made Latin where the name is written in Latin: in a
    word that has Latin letters, or one made only of look-alikes next to a Latin word."""
    table = _lookalikes()
    latin_name = any(_LATIN.search(w) for w in words)
    if not latin_name:
        return words
    out = []
    for word in words:
        if word.isascii():
            out.append(word)
            continue
        mapped = word.translate(table)
        if _LATIN.search(word) or mapped.isascii():
            out.append(mapped)
        else:
            out.append(word)
    return out


@lru_cache(maxsize=1)
def _lookalikes() -> dict[int, str]:
    """Cyrillic and Greek letters (as folded) -> the Latin letter they are confused with, from
    Unicode's confusables data through `confusable_homoglyphs`: a letter's own look-alike, else
    that of its capital ('к' is read as 'k' because 'К' looks like 'K')."""
    own: dict[int, str] = {}
    capital: dict[int, str] = {}
    for start, end in ((0x370, 0x400), (0x400, 0x500)):
        for code in range(start, end):
            char = chr(code)
            if not char.isalpha():
                continue
            latin = _latin_lookalike(char)
            if latin is None:
                continue
            folded = char.casefold()
            if len(folded) != 1:
                continue
            (own if folded == char else capital)[ord(folded)] = latin
    return {**capital, **own}


def _latin_lookalike(char: str) -> str | None:
    for entry in confusables.is_confusable(char, preferred_aliases=["latin"]) or []:
        for glyph in entry["homoglyphs"]:
            latin = glyph["c"].casefold()
            if glyph["n"].startswith("LATIN") and len(latin) == 1 and "a" <= latin <= "z":
                return str(latin)
    return None


def search_text(*parts: str | None) -> str:
    """The folded text the `q` filter searches."""
    return " ".join(fold(p) for p in parts if p)


def match_name(name: str) -> str:
    """The key names are matched on: folded, without a leading 'the', titles and honorifics
    before the name or post-nominals after it. Falls back to the folded name when nothing but
    such words is left ('The Lord Bishop')."""
    return match_folded(fold(name))


def match_folded(folded: str) -> str:
    """`match_name` of a name already folded: for a caller that needs the folded name too
    (an import makes both `match_name` and `search_text` of every new actor)."""
    words = [w for w in folded.split(" ") if w]
    start, end = 0, len(words)
    while start < end and words[start] in TITLES:
        start += 1
    while end > start and words[end - 1] in POSTNOMINALS:
        end -= 1
    kept = words[start:end]
    return " ".join(kept) if kept else " ".join(words)
