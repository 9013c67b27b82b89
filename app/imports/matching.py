"""Entity resolution: which existing actor, if any, a row names.

In order: an identifier (`(scheme, value)` is unique, so one identifier names one actor); the
exact normalised name (`app.text.match_name`, an indexed column) among actors of the same kind;
then a fuzzy score (rapidfuzz, `match_scorer` / `match_threshold` settings) over the same.

Every lookup is done in bulk: identifiers and exact names by one `IN` query per chunk of
`CHUNK` values, whatever the number of rows.

Fuzzy search and blocking: a fuzzy score cannot use a B-tree index, and scoring every row
against every actor is quadratic. On the first fuzzy lookup of a kind we stream
`(id, match_name)` of that kind's actors once (one SQL query, ordered by the `kind` index) and
build an inverted index token -> actors. A row is scored (rapidfuzz `process.extract`, C speed)
only against the actors that share at least one token with it, leaving out tokens so common
(`BLOCK_CAP` actors or more: "international", "john") that they would block nothing — unless
every token of the row is that common, when the rarest one is used, capped. A name whose every
word is misspelt is not found fuzzily; at a threshold of 92 such a pair is rarely the same actor.
Memory is one short string and id per actor of the kind, for the length of one import.

A candidate that carries another value of a scheme the row gives (another `ukparliament` id)
is a different actor and never matches by name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Actor, Identifier

CHUNK = 500
BLOCK_CAP = 2000
# Fuzzy candidates within this many points of the best are too close to call: ambiguous.
AMBIGUITY_MARGIN = 3.0
MAX_CANDIDATES = 5

Pair = tuple[str, str]


@dataclass(frozen=True)
class Candidate:
    id: int
    name: str
    score: float  # 0..1

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "score": self.score}


def scorer_named(name: str) -> Callable[..., float]:
    scorer = getattr(fuzz, name, None)
    if scorer is None or not callable(scorer):
        raise ValueError(f"unknown rapidfuzz scorer {name!r}")
    return scorer  # type: ignore[no-any-return]


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


@dataclass
class _Block:
    ids: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    postings: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))


class Resolver:
    """Bulk lookups of existing actors for one import (one session, one transaction)."""

    def __init__(self, session: Session, *, scorer: str = "token_sort_ratio", threshold: float = 92) -> None:
        self.session = session
        self.scorer = scorer_named(scorer)
        self.threshold = threshold
        self._blocks: dict[str, _Block] = {}
        self.names: dict[int, str] = {}

    def by_identifiers(self, pairs: Iterable[Pair]) -> dict[Pair, int]:
        """The actor id of each known `(scheme, value)`."""
        # One scheme at a time: `scheme = ? AND value IN (…)` is one range scan of the unique
        # (scheme, value) index, where a row-value IN list plans as an OR of single lookups.
        found: dict[Pair, int] = {}
        by_scheme: dict[str, set[str]] = defaultdict(set)
        for scheme, value in pairs:
            by_scheme[scheme].add(value)
        for scheme, values in sorted(by_scheme.items()):
            for part in chunks(sorted(values)):
                stmt = select(Identifier.value, Identifier.actor_id).where(
                    Identifier.scheme == scheme, Identifier.value.in_(part)
                )
                for value, actor_id in self.session.execute(stmt):
                    found[(scheme, value)] = actor_id
        return found

    def by_names(self, kind: str, names: Iterable[str]) -> dict[str, list[int]]:
        """The actors of `kind` with each exact `match_name`."""
        found: dict[str, list[int]] = defaultdict(list)
        for part in chunks(sorted(set(names))):
            # The kind is checked here, not in SQL: given both, SQLite's planner picks the
            # (unselective) kind index and scans every actor of the kind for each chunk.
            stmt = (
                select(Actor.id, Actor.name, Actor.match_name, Actor.kind)
                .where(Actor.match_name.in_(list(part)))
                .order_by(Actor.id)
            )
            for actor_id, name, key, actor_kind in self.session.execute(stmt):
                if actor_kind == kind:
                    found[key].append(actor_id)
                    self.names[actor_id] = name
        return found

    def identifiers_of(self, actor_ids: Iterable[int]) -> dict[int, dict[str, str]]:
        out: dict[int, dict[str, str]] = defaultdict(dict)
        for part in chunks(sorted(set(actor_ids))):
            stmt = select(Identifier.actor_id, Identifier.scheme, Identifier.value).where(
                Identifier.actor_id.in_(list(part))
            )
            for actor_id, scheme, value in self.session.execute(stmt):
                out[actor_id][scheme] = value
        return out

    def fetch_names(self, actor_ids: Iterable[int]) -> None:
        missing = sorted({i for i in actor_ids if i not in self.names})
        for part in chunks(missing):
            for actor_id, name in self.session.execute(
                select(Actor.id, Actor.name).where(Actor.id.in_(part))
            ):
                self.names[actor_id] = name

    def _block(self, kind: str) -> _Block:
        block = self._blocks.get(kind)
        if block is None:
            block = _Block()
            stmt = select(Actor.id, Actor.match_name).where(Actor.kind == kind).order_by(Actor.id)
            for actor_id, key in self.session.execute(stmt.execution_options(yield_per=10_000)):
                index = len(block.ids)
                block.ids.append(actor_id)
                block.names.append(key)
                for token in set(key.split(" ")):
                    block.postings[token].append(index)
            self._blocks[kind] = block
        return block

    def fuzzy(self, kind: str, key: str) -> list[Candidate]:
        """Actors of `kind` whose match_name scores at least the threshold, best first (without
        names: `fetch_names` them in bulk)."""
        if not key:
            return []
        block = self._block(kind)
        if not block.ids:
            return []
        postings = [block.postings.get(t, []) for t in set(key.split(" "))]
        postings = [p for p in postings if p]
        if not postings:
            return []
        useful = [p for p in postings if len(p) < BLOCK_CAP]
        if not useful:
            useful = [min(postings, key=len)[:BLOCK_CAP]]
        indices = sorted({i for p in useful for i in p})
        choices = {i: block.names[i] for i in indices}
        found = process.extract(
            key, choices, scorer=self.scorer, score_cutoff=self.threshold, limit=MAX_CANDIDATES * 2
        )
        # Names are fetched later, in bulk, for the candidates that end up in a report.
        out = [Candidate(block.ids[index], "", round(float(score) / 100, 4)) for _c, score, index in found]
        return sorted(out, key=lambda c: (-c.score, c.id))

    def add_new(self, kind: str, actor_id: int, key: str) -> None:
        """Make an actor created during this session's import visible to later fuzzy lookups
        (used by a whole-registry load, where rows of several batches meet)."""
        block = self._blocks.get(kind)
        if block is None:
            return
        index = len(block.ids)
        block.ids.append(actor_id)
        block.names.append(key)
        for token in set(key.split(" ")):
            block.postings[token].append(index)


def conflicts(row_pairs: Iterable[Pair], held: dict[str, str]) -> bool:
    """Whether an actor holding `held` ({scheme: value}) has another value of a scheme the row gives."""
    return any(scheme in held and held[scheme] != value for scheme, value in row_pairs)


def decide_fuzzy(candidates: list[Candidate]) -> tuple[Candidate | None, list[Candidate]]:
    """A single clearly best candidate -> it; several within AMBIGUITY_MARGIN -> ambiguous."""
    if not candidates:
        return None, []
    best = candidates[0]
    close = [c for c in candidates if (best.score - c.score) * 100 <= AMBIGUITY_MARGIN][:MAX_CANDIDATES]
    if len(close) == 1:
        return best, []
    return None, close
