"""The validators of the analytics over several letters (overlaps, their signatories and chart,
a campaign's reach, an actor's co-signatories): one row of raw SQL holding the state of exactly
the letters an answer covers — each letter's id, creation time and `version` (bumped by every
write to the letter, its signatures, and the actors and seats they count under) — and the
registry's version (seats, body and party names). A write to a letter the answer does not cover
leaves it alone, so repeated reads are 304s or answers kept in memory
(`app.http.hot_reads.keyed_read`), and a write to a covered letter moves it.

Each query is a few index lookups, read on the event loop before anything is computed."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

Validator = tuple[str, tuple[Any, ...]]

_REGISTRY = "(SELECT version FROM registry_version WHERE id = 1)"


def _letters_state(dialect: str, where: str) -> str:
    """A scalar subquery: the state of the letters `where` selects, in id order, as one text."""
    entry = "l.id || ':' || l.created_at || ':' || l.version"
    if dialect == "postgresql":
        return f"(SELECT string_agg({entry}, ',' ORDER BY l.id) FROM letters AS l WHERE {where})"
    return f"(SELECT group_concat(e, ',') FROM (SELECT {entry} AS e FROM letters AS l WHERE {where} ORDER BY l.id))"


@lru_cache(maxsize=256)
def _by_slugs_sql(dialect: str, n: int) -> str:
    placeholders = ", ".join(["%s"] * n)
    return f"SELECT {_letters_state(dialect, f'l.slug IN ({placeholders})')}, {_REGISTRY}"


def letters_validator(dialect: str, slugs: list[str]) -> Validator:
    """The letters named by `slugs` (an unknown slug adds nothing: the read then answers 404)."""
    return _by_slugs_sql(dialect, len(slugs)), tuple(slugs)


@lru_cache(maxsize=4)
def _campaign_sql(dialect: str) -> str:
    campaign = "(SELECT c.id FROM campaigns AS c WHERE c.slug = %s)"
    return f"SELECT {campaign}, {_letters_state(dialect, f'l.campaign_id = {campaign}')}, {_REGISTRY}"


def campaign_validator(dialect: str, slug: str) -> Validator:
    """The campaign (its id: one deleted and made again is another) and its letters, so a letter
    joining or leaving it moves the validator too."""
    return _campaign_sql(dialect), (slug, slug)


@lru_cache(maxsize=4)
def _actor_sql(dialect: str) -> str:
    actor = "(SELECT a.id || ':' || a.created_at FROM actors AS a WHERE a.id = %s)"
    signed = "l.id IN (SELECT s.letter_id FROM signatures AS s WHERE s.actor_id = %s)"
    return f"SELECT {actor}, {_letters_state(dialect, signed)}, {_REGISTRY}"


def actor_validator(dialect: str, actor_id: int) -> Validator:
    """The actor and every letter it signed (withdrawn or not): its co-signatories are the
    signatories of those letters, whose every change (a signature, a withdrawal, a signatory's
    edit) bumps that letter's version."""
    return _actor_sql(dialect), (actor_id, actor_id)
