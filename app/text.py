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

_NON_WORD = re.compile(r"[^\w]+|_+")
_SPACES = re.compile(r"\s+")

# Words that decorate a name without identifying anyone (compared after folding).
HONORIFICS = frozenset(
    [
        "rt",
        "hon",
        "right",
        "honourable",
        "honorable",
        "honourable",
        "the",
        "mp",
        "mps",
        "msp",
        "ms",
        "mla",
        "mep",
        "mr",
        "mrs",
        "miss",
        "mx",
        "dr",
        "prof",
        "professor",
        "sir",
        "dame",
        "lord",
        "lady",
        "baroness",
        "baron",
        "viscount",
        "earl",
        "countess",
        "marquess",
        "duke",
        "bishop",
        "rev",
        "revd",
        "reverend",
        "obe",
        "mbe",
        "cbe",
        "kbe",
        "dbe",
        "kcmg",
        "gcmg",
        "kc",
        "qc",
        "pc",
        "frs",
        "cbe",
        "frsa",
        "fba",
        "jp",
        "dl",
        "bt",
        "bart",
        "esq",
        "phd",
    ]
)


def fold(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form: 'Amnesty Int’l (UK)' -> 'amnesty int l uk'."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", _NON_WORD.sub(" ", stripped.casefold())).strip()


def search_text(*parts: str | None) -> str:
    """The folded text the `q` filter searches."""
    return " ".join(fold(p) for p in parts if p)


def search_terms(q: str) -> list[str]:
    """The words of a query, folded; every one must occur in a match."""
    return [t for t in fold(q).split(" ") if t][:20]


def match_name(name: str) -> str:
    """The key names are matched on: folded, without honorifics, post-nominals or a leading 'the'.
    Falls back to the folded name when nothing but honorifics is left ('The Lord Bishop')."""
    words = fold(name).split(" ")
    kept = [w for w in words if w not in HONORIFICS]
    return " ".join(kept) if kept else " ".join(words)
