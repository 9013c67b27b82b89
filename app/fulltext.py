"""The `q` rule of letters, actors and `/v1/search`: the databases' own full-text index.

What is indexed (migration 0023 keeps it by triggers, whatever writes; on PostgreSQL the dump
load computes new actors' documents in its one INSERT with the function the trigger calls,
migration 0024): a letter's title and its campaign's name, summary and body; an actor's name
and sort name, and its aliases. Case and accents are ignored (`unaccent` on PostgreSQL,
unicode61 without diacritics on SQLite) and words are stemmed (the english Snowball stemmer,
SQLite's porter tokenizer).

How a query matches: every word of the query must match (AND). A word matches the indexed words
that begin with its stem ("uighurs" -> `uighur*` finds "Uighur", "campaigning" finds
"campaigns"); a word of one or two letters must match whole ("UN" does not find "united"). A
word (or two-word phrase) of `VARIANTS` matches any of its variants ("uyghur" finds "Uighur",
"xinjiang" finds "East Turkestan", "china" finds "Chinese"). Chinese, Japanese and the other
scripts written without spaces have no words for the index to split on: such a word matches as
a substring of the folded `search_text` (the one case that reads every row).

Relevance: title (and name) matches rank above campaign/summary (alias) matches, above body
matches; `bm25` on SQLite, `ts_rank` on PostgreSQL, as an integer so a page's cursor holds it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    Select,
    Table,
    Text,
    cast,
    func,
    literal,
    literal_column,
)
from sqlalchemy.dialects.postgresql import REGCONFIG, TSVECTOR
from sqlalchemy.orm import Session

from app.errors import Invalid
from app.models import Actor, Letter
from app.text import fold

# Words (or phrases) that name the same thing, as journalists and the letters spell them:
# transliterations, former and other names, a country and its people. Written folded (lower
# case, no accents). A query word that is one of them matches any of them.
VARIANTS: tuple[tuple[str, ...], ...] = (
    ("uyghur", "uighur", "uigur", "uygur"),
    ("xinjiang", "east turkestan", "east turkistan", "sinkiang"),
    ("china", "chinese", "prc"),
    ("tibet", "tibetan", "xizang"),
    ("hong kong", "hongkong", "hongkonger"),
    ("taiwan", "taiwanese"),
    ("beijing", "peking"),
    ("burma", "myanmar", "burmese"),
    ("rohingya", "rohingyas"),
    ("kazakh", "kazak", "qazaq"),
    ("russia", "russian"),
    ("ukraine", "ukrainian"),
    ("belarus", "belarusian", "byelorussia"),
    ("iran", "iranian", "persia", "persian"),
    ("israel", "israeli"),
    ("palestine", "palestinian"),
    ("gaza", "ghazza"),
    ("kyiv", "kiev"),
    ("un", "united nations"),
    ("eu", "european union"),
    ("uk", "united kingdom", "britain", "british"),
    ("mp", "mps", "member of parliament"),
)

_MAX_WORDS = 20
_WORD = re.compile(r"[^\W_]+")
# Scripts written without spaces between words (Han, kana, Thai, Lao, Myanmar, Khmer).
_UNSPACED = re.compile(
    r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
)


@lru_cache(maxsize=1)
def _variants() -> dict[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """Each variant (as its words) -> every variant of its group."""
    out: dict[tuple[str, ...], tuple[tuple[str, ...], ...]] = {}
    for group in VARIANTS:
        forms = tuple(tuple(v.split(" ")) for v in group)
        for form in forms:
            out[form] = forms
    return out


@dataclass(frozen=True)
class Query:
    """A query read: each unit must match; a unit is its variants (each a tuple of words),
    and `unspaced` the words matched as substrings."""

    units: tuple[tuple[tuple[str, ...], ...], ...]
    unspaced: tuple[str, ...]


def read_query(q: str, *, field: str = "query.q") -> Query:
    """The units of `q`; 422 naming `field` when it has no word to search for."""
    words = _WORD.findall(unicodedata.normalize("NFC", q).casefold())[:_MAX_WORDS]
    if not words:
        raise Invalid("has no words to search for", field=field)
    table = _variants()
    units: list[tuple[tuple[str, ...], ...]] = []
    unspaced: list[str] = []
    i = 0
    while i < len(words):
        if _UNSPACED.search(words[i]):
            unspaced.append(fold(words[i]))
            i += 1
            continue
        for width in (3, 2, 1):
            key = tuple(fold(w) for w in words[i : i + width])
            group = table.get(key) or (table.get((key[0].removesuffix("s"),)) if width == 1 else None)
            if len(key) == width and group:
                units.append(group)
                i += width
                break
        else:
            units.append(((words[i],),))
            i += 1
    return Query(tuple(units), tuple(unspaced))


def _prefix(word: str) -> bool:
    return len(word) > 2


def _fts5(query: Query) -> str:
    def variant(words: tuple[str, ...]) -> str:
        return '"' + " ".join(words) + '"' + ("*" if _prefix(words[-1]) else "")

    return " AND ".join("(" + " OR ".join(variant(v) for v in unit) + ")" for unit in query.units)


def _tsquery(query: Query) -> str:
    def variant(words: tuple[str, ...]) -> str:
        return " <-> ".join(
            f"'{w}'" + (":*" if _prefix(w) and i == len(words) - 1 else "") for i, w in enumerate(words)
        )

    return " & ".join("(" + " | ".join(f"({variant(v)})" for v in unit) + ")" for unit in query.units)


_fts = MetaData()  # not the models' metadata: migration 0023 makes these, alembic leaves them out
_TABLES = {
    "letters": Table("letters_fts", _fts, Column("rowid", Integer), Column("letters_fts", Text)),
    "actors": Table("actors_fts", _fts, Column("rowid", Integer), Column("actors_fts", Text)),
}
# bm25 weights of the FTS5 columns (letters: title, campaign, summary, body; actors: name,
# aliases), in the order of PostgreSQL's weights A, B, B, D and A, B.
_BM25_WEIGHTS = {"letters": (10.0, 4.0, 4.0, 1.0), "actors": (10.0, 4.0)}
# Scores are small fractions: scaled to integers, they sort the same and a cursor can hold them.
_SCALE = 1_000_000_000


def apply(
    session: Session, stmt: Select[Any], model: type[Letter] | type[Actor], q: str, *, field: str = "query.q"
) -> tuple[Select[Any], Any]:
    """`stmt` narrowed to the rows of `model` matching `q`, and the relevance of a row (an
    integer, higher is better) to order by."""
    query = read_query(q, field=field)
    table = model.__tablename__
    for word in query.unspaced:
        stmt = stmt.where(model.search_text.contains(word, autoescape=True))
    if not query.units:
        return stmt, literal(0, BigInteger)
    if session.get_bind().dialect.name == "postgresql":
        vector = literal_column(f"{table}.search_vector", TSVECTOR)
        tsquery = func.to_tsquery(cast(literal("undersigned"), REGCONFIG), _tsquery(query))
        stmt = stmt.where(vector.bool_op("@@")(tsquery))
        return stmt, cast(func.ts_rank(vector, tsquery) * literal(float(_SCALE)), BigInteger)
    fts = _TABLES[table]
    match = fts.c[fts.name]
    stmt = stmt.join(fts, fts.c.rowid == model.id).where(match.op("MATCH")(_fts5(query)))
    bm25 = func.bm25(literal_column(fts.name), *_BM25_WEIGHTS[table])
    return stmt, cast(-bm25 * _SCALE, BigInteger)
