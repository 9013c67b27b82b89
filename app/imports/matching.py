"""Entity resolution: which existing actor, if any, a row names.

In order: an identifier (`(scheme, value)` is unique, so one identifier names one actor); the
exact normalised name (`app.text.match_name`, an indexed column) among actors of the same kind;
then a fuzzy score (rapidfuzz, `match_scorer` / `match_threshold` settings) over the same.

Every lookup is done in bulk: identifiers by one statement per scheme, through the driver (an
array on PostgreSQL, IN lists of `IN_LIST` on SQLite); exact names by one `IN` query per chunk
of `CHUNK` values, whatever the number of rows — or, for a batch of `SCAN_AFTER` names or more,
one read of `(id, match_name)` of the kind's actors that answers the exact names and prepares
the fuzzy search at once (cheaper than hundreds of `IN` queries, and the fuzzy search reads
those rows anyway).

Fuzzy search and blocking: a fuzzy score cannot use a B-tree index, and scoring every row
against every actor is quadratic. The actors of the kind are indexed by token (token -> actors,
in id order). A row is scored only against the actors that share at least one token with it,
leaving out tokens so common (`BLOCK_CAP` actors or more: "international", "john") that they
would block nothing — unless every token of the row that any actor has is that common, when the
rarest one (the alphabetically first of equally rare ones) is used, capped to its first
`BLOCK_CAP` actors. A name whose every word is misspelt is not found fuzzily; at a threshold of
92 such a pair is rarely the same actor. Of those candidates, the best `MAX_CANDIDATES * 2`
scoring at least the threshold are kept (ties: lower id first).

`fuzzy(kind, key)` does that for one name (the whole kind is indexed on first use, and
`add_new` extends it: a whole-registry load). `fuzzy_many(kind, keys)` gives the same answers
for a batch, faster: it indexes only the tokens the batch uses, and scores each blocking token's
actors against all the batch's names that use it. For the default scorer (`token_sort_ratio`,
and for `ratio`) a block with many rows is searched through a q-gram index of its actors, which
skips the pairs that cannot reach the threshold without scoring them: a pair within
`ratio` >= t differs by at most D = (1 - t/100)(m + l) insertions and deletions (m, l: the
lengths of the two sorted-token strings), so their lengths differ by at most D and they share
at least max(m, l) - q + 1 - qD q-grams (each insertion or deletion spoils at most q of them); a
candidate sharing none of the row's n - that + 1 rarest q-grams is therefore below the threshold
(the prefix filter). Only the actors it leaves are scored, with the same scorer, so the answers
are the same as scoring all of them.

Memory is one short string and id per actor of the kind, for the length of one import.

A candidate that carries another value of a scheme the row gives (another `ukparliament` id)
is a different actor and never matches by name.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from copy import copy
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from math import floor
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Actor

CHUNK = 500
IN_LIST = 5000  # values per IN list of a lookup through SQLite's driver (`Resolver._rows_among`)
BLOCK_CAP = 2000
# A batch with this many distinct names of a kind reads the kind's (id, match_name) once.
SCAN_AFTER = 2000
# `fuzzy_many` searches a large block through an index of its actors' q-grams (ratio-family
# scorers), when that costs less than scoring every pair.
QGRAM = 3
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
class _Scan:
    """What one read of a kind's actors gives a batch of names: the actors with each of those
    names (exact), and for each token of those names the actors that have it (ids ascending) —
    all the blocking rule looks at — with their match_names."""

    keys: set[str]
    exact: dict[str, list[int]] = field(default_factory=dict)
    postings: dict[str, list[int]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    countries: dict[int, str | None] = field(default_factory=dict)  # of the actors in `names`
    blocks: dict[str, _Indexed] = field(default_factory=dict)  # prepared by `fuzzy_many`


@dataclass
class _Indexed:
    """The actors blocked on one token (its first BLOCK_CAP), as the pair scorer compares them,
    and once worth it, their q-gram index: gram -> positions, how many, and the lengths."""

    ids: list[int]
    forms: list[str]
    index: dict[tuple[str, ...], list[int]] | None = None
    rarity: dict[tuple[str, ...], int] = field(default_factory=dict)
    lengths: list[int] = field(default_factory=list)
    ordered: list[int] = field(default_factory=list)


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
        self._scans: dict[str, _Scan] = {}
        self.names: dict[int, str] = {}
        # `fuzzy_many` compares what the scorer compares: token_sort_ratio is `ratio` of the
        # sorted-token strings, so those are made once per name, not once per pair.
        self._presort = self.scorer is fuzz.token_sort_ratio
        self._pair_scorer: Callable[..., float] = fuzz.ratio if self._presort else self.scorer
        self._qgrams = self.scorer is fuzz.token_sort_ratio or self.scorer is fuzz.ratio

    def with_threshold(self, threshold: float) -> Resolver:
        """A resolver of the same session and scorer at another threshold, sharing this one's
        reads of the actors (a scan and its blocks hold no threshold, which is applied when
        scoring): what this one read is not read again. Its fuzzy lookups therefore see the
        registry as this one read it — before the import's own writes."""
        other = copy(self)  # (shallow: the reads are shared)
        other.threshold = threshold
        return other

    def by_identifiers(self, pairs: Iterable[Pair]) -> dict[Pair, int]:
        """The actor id of each known `(scheme, value)`."""
        # One scheme at a time: `scheme = ? AND value IN (…)` is one range scan of the unique
        # (scheme, value) index, where a row-value IN list plans as an OR of single lookups.
        found: dict[Pair, int] = {}
        by_scheme: dict[str, set[str]] = defaultdict(set)
        for scheme, value in pairs:
            by_scheme[scheme].add(value)
        for scheme, values in sorted(by_scheme.items()):
            sql = "SELECT value, actor_id FROM identifiers WHERE scheme = {mark} AND value {values}"
            for value, actor_id in self._rows_among(sql, (scheme,), sorted(values)):
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

    def by_names_bulk(self, kind: str, names: Iterable[str]) -> dict[str, list[int]]:
        """`by_names` for a batch: below `SCAN_AFTER` distinct names the same `IN` queries, from
        there one read of the kind's actors (kept for `fuzzy_many` of the same names). Actor
        names are not fetched (`fetch_names`)."""
        wanted = set(names)
        if len(wanted) < SCAN_AFTER:
            return self.by_names(kind, wanted)
        scan = self._scan(kind, wanted)
        return {key: scan.exact[key] for key in wanted if key in scan.exact}

    def prepare_fuzzy(self, kind: str, keys: Iterable[str]) -> None:
        """Read what `fuzzy_many` of any of `keys` needs now (the kind's actors), so that those
        calls use the database no more (the import writes meanwhile)."""
        self._scan(kind, set(keys))

    def _scan(self, kind: str, keys: set[str]) -> _Scan:
        """One read of `(id, match_name)` of the kind's actors, indexed for `keys` only."""
        scan = self._scans.get(kind)
        if scan is not None and keys <= scan.keys:
            return scan
        tokens = {t for key in keys for t in key.split(" ")}
        scan = _Scan(keys)
        exact, postings, names, countries = scan.exact, scan.postings, scan.names, scan.countries
        for actor_id, key, country in self._rows_of_kind(kind):
            if key in keys:
                if key in exact:
                    exact[key].append(actor_id)
                else:
                    exact[key] = [actor_id]
            kept = False
            for token in key.split(" "):
                if token in tokens:
                    kept = True
                    posting = postings.get(token)
                    if posting is None:
                        postings[token] = [actor_id]
                    elif posting[-1] != actor_id:  # (a token twice in one name counts once)
                        posting.append(actor_id)
            if kept:
                names[actor_id] = key
                countries[actor_id] = country
        self._scans[kind] = scan
        return scan

    def _rows_of_kind(self, kind: str) -> Iterator[tuple[int, str, str | None]]:
        """`(id, match_name, country)` of the kind's actors in id order, through the driver's cursor
        (hundreds of thousands of rows: no per-row work by SQLAlchemy)."""
        self.session.flush()
        conn = self.session.connection()
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        cursor = conn.connection.cursor()
        try:
            cursor.execute(
                f"SELECT id, match_name, country FROM actors WHERE kind = {mark} ORDER BY id", (kind,)
            )
            while rows := cursor.fetchmany(10_000):
                yield from rows
        finally:
            cursor.close()

    def scanned(self, kind: str, actor_id: int) -> tuple[str, str | None]:
        """`(match_name, country)` of an actor that a fuzzy search of `kind` found."""
        scan = self._scans[kind]
        return scan.names[actor_id], scan.countries.get(actor_id)

    def identifiers_of(self, actor_ids: Iterable[int]) -> dict[int, dict[str, str]]:
        out: dict[int, dict[str, str]] = defaultdict(dict)
        sql = "SELECT actor_id, scheme, value FROM identifiers WHERE actor_id {values}"
        for actor_id, scheme, value in self._rows_among(sql, (), sorted(set(actor_ids))):
            out[actor_id][scheme] = value
        return out

    def by_aliases(self, kind: str, keys: Iterable[str]) -> dict[str, list[int]]:
        """The actors of `kind` with an alias of each normalised name."""
        found: dict[str, list[int]] = defaultdict(list)
        sql = (
            "SELECT l.match_name, l.actor_id FROM actor_aliases l JOIN actors a ON a.id = l.actor_id "
            "WHERE a.kind = {mark} AND l.match_name {values} ORDER BY l.actor_id"
        )
        for key, actor_id in self._rows_among(sql, (kind,), sorted(set(keys))):
            if actor_id not in found[key]:
                found[key].append(actor_id)
        return found

    def by_variants(self, kind: str, variants: Iterable[str]) -> dict[str, list[int]]:
        """The actors of `kind` whose variant key, or an alias's, is each of `variants`."""
        found: dict[str, list[int]] = defaultdict(list)
        wanted = sorted({v for v in variants if v})
        own = "SELECT variant_key, id FROM actors WHERE kind = {mark} AND variant_key {values} ORDER BY id"
        alias = (
            "SELECT l.variant_key, l.actor_id FROM actor_aliases l JOIN actors a ON a.id = l.actor_id "
            "WHERE a.kind = {mark} AND l.variant_key {values} ORDER BY l.actor_id"
        )
        for sql in (own, alias):
            for key, actor_id in self._rows_among(sql, (kind,), wanted):
                if actor_id not in found[key]:
                    found[key].append(actor_id)
        return found

    def facts_of(self, actor_ids: Iterable[int]) -> dict[int, tuple[str, str | None]]:
        """`(match_name, country)` of each actor."""
        sql = "SELECT id, match_name, country FROM actors WHERE id {values}"
        return {i: (key, country) for i, key, country in self._rows_among(sql, (), sorted(set(actor_ids)))}

    def seats_of(self, actor_ids: Iterable[int]) -> dict[int, list[tuple[int, int | None, Any, Any]]]:
        """Each actor's memberships: `(body_id, party_id, start_date, end_date)`."""
        out: dict[int, list[tuple[int, int | None, Any, Any]]] = defaultdict(list)
        sql = "SELECT actor_id, body_id, party_id, start_date, end_date FROM memberships WHERE actor_id {values}"
        for actor_id, body_id, party_id, start, end in self._rows_among(sql, (), sorted(set(actor_ids))):
            out[actor_id].append((body_id, party_id, _day(start), _day(end)))
        return out

    def fetch_names(self, actor_ids: Iterable[int]) -> None:
        """The names of `actor_ids` into `names`."""
        missing = sorted({i for i in actor_ids if i not in self.names})
        self.names.update(self._rows_among("SELECT id, name FROM actors WHERE id {values}", (), missing))

    def _rows_among(self, sql: str, params: tuple[Any, ...], values: list[Any]) -> Iterator[Any]:
        """The rows of `sql` for `values` — in it, `{mark}` is a parameter (given in `params`)
        and `{values}` the condition "among `values`" — through the driver's cursor: one array
        parameter on PostgreSQL, IN lists of `IN_LIST` on SQLite. Tens of thousands of values
        cost no more than a few statements (the identifiers of a 100,000-row import: 0.1 s
        instead of 0.4 s for IN lists of 500 through the ORM)."""
        if not values:
            return
        self.session.flush()
        conn = self.session.connection()
        cursor = conn.connection.cursor()
        try:
            if conn.dialect.name == "postgresql":
                among, value = _pg_among(values)
                cursor.execute(sql.format(mark="%s", values=among), (*params, value))
                yield from cursor.fetchall()
                return
            for part in chunks(values, IN_LIST):
                cursor.execute(
                    sql.format(mark="?", values=f"IN ({', '.join('?' * len(part))})"), (*params, *part)
                )
                yield from cursor.fetchall()
        finally:
            cursor.close()

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
        postings = [block.postings.get(t, []) for t in sorted(set(key.split(" ")))]
        postings = [p for p in postings if p]
        if not postings:
            return []
        useful = [p for p in postings if len(p) < BLOCK_CAP]
        if not useful:  # the rarest (`min` keeps the alphabetically first of equally rare ones)
            useful = [min(postings, key=len)[:BLOCK_CAP]]
        indices = sorted({i for p in useful for i in p})
        choices = {i: block.names[i] for i in indices}
        found = process.extract(
            key, choices, scorer=self.scorer, score_cutoff=self.threshold, limit=MAX_CANDIDATES * 2
        )
        # Names are fetched later, in bulk, for the candidates that end up in a report.
        out = [Candidate(block.ids[index], "", round(float(score) / 100, 4)) for _c, score, index in found]
        return sorted(out, key=lambda c: (-c.score, c.id))

    def fuzzy_many(self, kind: str, keys: Iterable[str]) -> dict[str, list[Candidate]]:
        """`fuzzy(kind, key)` of each of `keys`, in bulk: the same candidates, scores and order
        (names left empty), for the names that have any."""
        wanted = {key for key in keys if key}
        if not wanted:
            return {}
        scan = self._scan(kind, wanted)
        postings, names = scan.postings, scan.names
        cutoff = self.threshold
        score = self._pair_scorer
        form_of = self._form
        hits: dict[str, dict[int, float]] = defaultdict(dict)
        # The blocking rule of `fuzzy`, per name: its tokens under BLOCK_CAP actors, else its
        # rarest token, capped. A token of a few actors is scored at once; the names that use
        # a larger one are grouped, so that its actors are prepared once for all of them.
        groups: dict[str, list[str]] = defaultdict(list)
        known = postings.keys()
        for key in wanted:
            present = known & key.split(" ")
            if not present:
                continue
            useful = [t for t in present if len(postings[t]) < BLOCK_CAP]
            if not useful:
                groups[min(present, key=lambda t: (len(postings[t]), t))].append(key)
                continue
            query = ""
            for token in useful:
                ids = postings[token]
                if len(ids) > 8:
                    groups[token].append(key)
                    continue
                query = query or form_of(key)
                for actor_id in ids:
                    value = score(query, form_of(names[actor_id]), score_cutoff=cutoff)
                    if value >= cutoff:
                        hits[key][actor_id] = value
        for token in sorted(groups):
            self._score_block(scan, token, groups[token], hits)
        out: dict[str, list[Candidate]] = {}
        for key, found in hits.items():
            # `process.extract`'s choice: best scores first, ties in id order, the first few.
            best = sorted(found.items(), key=lambda item: (-item[1], item[0]))[: MAX_CANDIDATES * 2]
            candidates = [Candidate(actor_id, "", round(float(value) / 100, 4)) for actor_id, value in best]
            out[key] = sorted(candidates, key=lambda c: (-c.score, c.id))
        return out

    def _form(self, name: str) -> str:
        """The string the pair scorer compares: tokens sorted for token_sort_ratio."""
        return " ".join(sorted(name.split())) if self._presort else name

    def _score_block(
        self, scan: _Scan, token: str, keys: list[str], hits: dict[str, dict[int, float]]
    ) -> None:
        """Score `keys` against the actors blocked on `token` (its first BLOCK_CAP); every pair
        at or above the threshold goes into `hits[key][actor_id]`. Through the block's q-gram
        index when that costs less than scoring every pair (the index is kept for the batch's
        later calls)."""
        block = scan.blocks.get(token)
        if block is None:
            ids = scan.postings[token][:BLOCK_CAP]
            block = scan.blocks[token] = _Indexed(ids, [self._form(scan.names[i]) for i in ids])
        if self._qgrams and block.index is None:
            pairs, build, probe = len(keys) * len(block.ids) * 50, len(block.ids) * 8000, len(keys) * 12000
            if pairs > build + probe:  # (estimated ns)
                self._build_index(block)
        if block.index is not None and len(block.ids) * 50 > 12000:
            self._score_indexed(block, keys, hits)
            return
        cutoff = self.threshold
        score, ids, forms = self._pair_scorer, block.ids, block.forms
        for key in keys:
            found = process.extract(self._form(key), forms, scorer=score, score_cutoff=cutoff, limit=None)
            for _form, value, position in found:
                hits[key][ids[position]] = value

    def _build_index(self, block: _Indexed) -> None:
        index: dict[tuple[str, ...], list[int]] = {}
        for position, form in enumerate(block.forms):
            for gram in self._grams_of(form)[1]:
                posting = index.get(gram)
                if posting is None:
                    index[gram] = [position]
                else:
                    posting.append(position)
        block.index = index
        block.rarity = {gram: len(posting) for gram, posting in index.items()}
        block.lengths = [len(form) for form in block.forms]
        block.ordered = sorted(block.lengths)

    def _score_indexed(self, block: _Indexed, keys: list[str], hits: dict[str, dict[int, float]]) -> None:
        """`_score_block` through the block's q-gram index (ratio-family scorers only): only the
        actors that pass the length and prefix filters (module docstring) are scored."""
        cutoff = self.threshold
        score = self._pair_scorer
        index, rarity, lengths, ordered = block.index or {}, block.rarity, block.lengths, block.ordered
        ids, forms = block.ids, block.forms
        known = rarity.keys()
        within: dict[int, tuple[int, int, int, bool]] = {}  # by the query's length
        for key in keys:
            query = self._form(key)
            bounds = within.get(len(query))
            if bounds is None:
                low, high, need = _bounds(len(query), cutoff)
                fits = bisect_right(ordered, high) - bisect_left(ordered, low) > 0
                bounds = within[len(query)] = (low, high, need, fits)
            low, high, need, fits = bounds
            if not fits:
                continue  # no actor of a length that could reach the threshold
            count, grams = self._grams_of(query)
            # A match shares `need` grams counted with repeats, so at least `need - repeats`
            # distinct ones, so at least one of any `len(grams) - (need - repeats) + 1`.
            need -= count - len(grams)
            pool: Iterable[int]
            if need <= 0:
                pool = range(len(forms))
            else:
                present = known & grams
                probes = len(present) - need + 1  # the absent ones are probed too: no one has them
                if probes <= 0:
                    continue
                found: set[int] = set()
                for gram in sorted(present, key=rarity.__getitem__)[:probes]:
                    found.update(index[gram])
                pool = found
            for position in pool:
                if low <= lengths[position] <= high:
                    value = score(query, forms[position], score_cutoff=cutoff)
                    if value >= cutoff:
                        hits[key][ids[position]] = value

    @staticmethod
    def _grams_of(form: str) -> tuple[int, set[tuple[str, ...]]]:
        """How many q-grams `form` has (with repeats), and the distinct ones (as tuples of
        characters: zip makes them faster than slices)."""
        shifted = [form[i:] for i in range(QGRAM)]
        return max(len(form) - QGRAM + 1, 0), set(zip(*shifted, strict=False))

    def add_new(self, kind: str, actor_id: int, key: str) -> None:
        """Make an actor created during this session's import visible to later fuzzy lookups
        (used by a whole-registry load, where rows of several batches meet)."""
        self._scans.pop(kind, None)  # a batch's read of the kind no longer holds every actor
        block = self._blocks.get(kind)
        if block is None:
            return
        index = len(block.ids)
        block.ids.append(actor_id)
        block.names.append(key)
        for token in set(key.split(" ")):
            block.postings[token].append(index)


_SEPARATOR = "\x1f"  # (the unit separator: no name or identifier holds it)


def _pg_among(values: list[Any]) -> tuple[str, Any]:
    """PostgreSQL: the condition "among `values`" and its one parameter. Texts and integers go
    as one string split by the server: the driver dumps a list parameter value by value in
    Python (0.6 s of the client's time for 100,000 names, against 0.01 s for the string). Other
    values, or texts that are empty or hold the separator, go as an array."""
    if all(type(v) is str for v in values):
        joined = _SEPARATOR.join(values)
        if all(values) and joined.count(_SEPARATOR) == len(values) - 1:
            return "= ANY(string_to_array(%s, chr(31)))", joined
    elif all(type(v) is int for v in values):
        return "= ANY(CAST(string_to_array(%s, ',') AS bigint[]))", ",".join(map(str, values))
    return "= ANY(%s)", values


def _day(value: Any) -> date | None:
    """A date from the driver (SQLite hands back ISO text)."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


@lru_cache(maxsize=4096)
def _bounds(length: int, threshold: float) -> tuple[int, int, int]:
    """For a string of `length` and a `ratio` threshold: the lengths another string may have to
    reach it, and the fewest q-grams (as multisets) the two must then share (<= 0: no bound).
    `ratio` = 100 (1 - D / (m + l)) with D the insertions and deletions from one to the other,
    so D <= (1 - t/100)(m + l), |m - l| <= D, and each edit spoils at most QGRAM q-grams."""
    slack = 1 - threshold / 100
    if slack >= 1:
        return 0, 1 << 62, 0
    low, high, need = 1 << 62, -1, 1 << 62
    for other in range(int(length * (1 + slack) / (1 - slack)) + 2):
        edits = floor(slack * (length + other) + 1e-6)  # generous: never leaves out a match
        if abs(length - other) <= edits:
            low, high = min(low, other), max(high, other)
            need = min(need, max(length, other) - QGRAM + 1 - QGRAM * edits)
    return low, high, need


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
