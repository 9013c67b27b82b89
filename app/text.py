"""Normalised forms of names and texts, kept alongside what was given.

`search_text` folds case, accents and punctuation so the `q` filter matches "Ligue des droits"
in "LIGUE DES DROITS DE L'HOMME" and works for every script (Chinese and Uyghur names have no
spaces for a tokenizer to split on, so the filter matches substrings of the folded text).
`match_name` goes further for entity resolution: it also drops a leading "The", honorifics and
post-nominals ("Rt Hon", "MP", "Lord", "Baroness", "Dr", "OBE", …).
"""

from __future__ import annotations

import re
import unicodedata

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
    """Case-, accent- and punctuation-insensitive form: 'Amnesty Int’l (UK)' -> 'amnesty int l uk'."""
    if text.isascii():  # nothing to decompose: the fast path for most names
        stripped = text
    else:
        decomposed = unicodedata.normalize("NFKD", text)
        stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_WORDS.findall(stripped.casefold()))


def search_text(*parts: str | None) -> str:
    """The folded text the `q` filter searches."""
    return " ".join(fold(p) for p in parts if p)


def search_terms(q: str) -> list[str]:
    """The words of a query, folded; every one must occur in a match."""
    return [t for t in fold(q).split(" ") if t][:20]


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
