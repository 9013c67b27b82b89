"""Whole-registry dumps (SPEC §4): `undersigned export DIR` writes one UTF-8 CSV per table,
`undersigned import DIR` reads them back; Popolo JSON (persons, organizations, memberships)
both ways.

Export streams every table in id order (`yield_per`), so memory stays flat at any size. Load
reads each file row by row and writes in batches of `BATCH` rows with executemany (ids of new
actors from `service.insert_actors`), all in the caller's one transaction, with one change
record (`load`). What stays in memory is the map from each dump's `ref` to the new actor id
(an int per actor) and the slug maps of bodies, parties, campaigns and letters.

Into an empty registry (no actors, no letters) every row is kept as it is. Into a registry with
data, actors are matched as the import endpoint does (identifier, exact normalised name, a
single clear fuzzy candidate; an ambiguous one becomes a new actor), bodies, parties, campaigns
and letters by slug (existing ones are left as they are, and so are the claims, sources and
events of letters that existed), and a signature, recipient or membership that exists already
is skipped.

Beyond the columns of the SPEC table, `letters.csv` carries `body` (the letter's text),
`signatures.csv` `source` and `events.csv` `campaign` (events of a campaign), so that a dump
loses nothing; a dump without them loads too.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, insert, select, tuple_
from sqlalchemy.orm import Session

from app import rollups
from app.changes import record_change
from app.errors import Invalid
from app.imports.matching import Resolver, chunks, decide_fuzzy
from app.imports.parsing import COUNTRIES, KINDS, format_identifiers, parse_identifiers
from app.imports.service import insert_actors, insert_rows
from app.models import (
    Actor,
    Base,
    Body,
    Campaign,
    Claim,
    Event,
    Identifier,
    Letter,
    Membership,
    Party,
    Recipient,
    Signature,
    Source,
)
from app.text import match_name, search_text

BATCH = 5000
Progress = Callable[[str, int], None]  # (file, rows done so far)

COLUMNS: dict[str, list[str]] = {
    "bodies.csv": ["slug", "name", "country"],
    "parties.csv": ["slug", "name", "country"],
    "campaigns.csv": ["slug", "name", "description"],
    "actors.csv": ["ref", "kind", "name", "sort_name", "country", "org_type", "identifiers"],
    "memberships.csv": ["actor_ref", "body", "party", "constituency", "start_date", "end_date"],
    "letters.csv": [
        "slug",
        "title",
        "summary",
        "language",
        "published_on",
        "status",
        "claimed_signatory_count",
        "campaign",
        "body",
    ],
    "claims.csv": ["letter", "count", "wording", "url"],
    "sources.csv": ["letter", "label", "url"],
    "signatures.csv": [
        "letter",
        "actor_ref",
        "signed_on",
        "capacity",
        "affiliation",
        "position",
        "status",
        "withdrawn_on",
        "source",
    ],
    "recipients.csv": ["letter", "actor_ref", "role", "capacity"],
    "events.csv": ["letter", "date", "kind", "note", "url", "campaign"],
}
REQUIRED = {"actors.csv": ["ref", "kind", "name"]}

Row = dict[str, str | None]


# --- export -------------------------------------------------------------------------------------


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return value


def _stream(session: Session, stmt: Any) -> Iterator[Any]:
    yield from session.execute(stmt.execution_options(yield_per=BATCH))


def _table_rows(session: Session, name: str) -> Iterator[Any]:
    """The rows of one dump file, as tuples in COLUMNS order."""
    if name in ("bodies.csv", "parties.csv"):
        model: type[Body] | type[Party] = Body if name == "bodies.csv" else Party
        yield from _stream(session, select(model.slug, model.name, model.country).order_by(model.id))
    elif name == "campaigns.csv":
        yield from _stream(
            session, select(Campaign.slug, Campaign.name, Campaign.description).order_by(Campaign.id)
        )
    elif name == "actors.csv":
        yield from _actor_rows(session)
    elif name == "memberships.csv":
        stmt: Any = (
            select(
                Membership.actor_id,
                Body.slug,
                Party.slug,
                Membership.constituency,
                Membership.start_date,
                Membership.end_date,
            )
            .join(Body, Body.id == Membership.body_id)
            .outerjoin(Party, Party.id == Membership.party_id)
            .order_by(Membership.id)
        )
        yield from _stream(session, stmt)
    elif name == "letters.csv":
        stmt = (
            select(
                Letter.slug,
                Letter.title,
                Letter.summary,
                Letter.language,
                Letter.published_on,
                Letter.status,
                Letter.claimed_signatory_count,
                Campaign.slug,
                Letter.body,
            )
            .outerjoin(Campaign, Campaign.id == Letter.campaign_id)
            .order_by(Letter.id)
        )
        yield from _stream(session, stmt)
    elif name == "claims.csv":
        yield from _stream(
            session,
            select(Letter.slug, Claim.count, Claim.wording, Claim.url)
            .join(Letter, Letter.id == Claim.letter_id)
            .order_by(Claim.id),
        )
    elif name == "sources.csv":
        yield from _stream(
            session,
            select(Letter.slug, Source.label, Source.url)
            .join(Letter, Letter.id == Source.letter_id)
            .order_by(Source.id),
        )
    elif name == "signatures.csv":
        stmt = (
            select(
                Letter.slug,
                Signature.actor_id,
                Signature.signed_on,
                Signature.capacity,
                Signature.affiliation,
                Signature.position,
                Signature.status,
                Signature.withdrawn_on,
                Signature.source,
            )
            .join(Letter, Letter.id == Signature.letter_id)
            .order_by(Signature.id)
        )
        yield from _stream(session, stmt)
    elif name == "recipients.csv":
        yield from _stream(
            session,
            select(Letter.slug, Recipient.actor_id, Recipient.role, Recipient.capacity)
            .join(Letter, Letter.id == Recipient.letter_id)
            .order_by(Recipient.id),
        )
    elif name == "events.csv":
        stmt = (
            select(Letter.slug, Event.date, Event.kind, Event.note, Event.url, Campaign.slug)
            .outerjoin(Letter, Letter.id == Event.letter_id)
            .outerjoin(Campaign, Campaign.id == Event.campaign_id)
            .order_by(Event.id)
        )
        yield from _stream(session, stmt)


def _actor_rows(session: Session, kind: str | None = None) -> Iterator[tuple[Any, ...]]:
    stmt = select(Actor.id, Actor.kind, Actor.name, Actor.sort_name, Actor.country, Actor.org_type).order_by(
        Actor.id
    )
    if kind is not None:
        stmt = stmt.where(Actor.kind == kind)
    batch: list[Any] = []

    def flush() -> Iterator[tuple[Any, ...]]:
        held: dict[int, list[tuple[str, str]]] = {}
        ids = [r[0] for r in batch]
        for actor_id, scheme, value in session.execute(
            select(Identifier.actor_id, Identifier.scheme, Identifier.value)
            .where(Identifier.actor_id.in_(ids))
            .order_by(Identifier.id)
        ):
            held.setdefault(actor_id, []).append((scheme, value))
        for r in batch:
            yield (*r, format_identifiers(held.get(r[0], [])))

    for row in _stream(session, stmt):
        batch.append(row)
        if len(batch) >= 1000:
            yield from flush()
            batch = []
    if batch:
        yield from flush()


def export_registry(session: Session, directory: Path, *, progress: Progress | None = None) -> dict[str, int]:
    """Write every table to `directory` (created if needed); the row count of each file."""
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    for name, columns in COLUMNS.items():
        count = 0
        with (directory / name).open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            for row in _table_rows(session, name):
                writer.writerow([_cell(v) for v in row])
                count += 1
                if progress and count % BATCH == 0:
                    progress(name, count)
        written[name] = count
        if progress:
            progress(name, count)
    return written


# --- load ---------------------------------------------------------------------------------------

RowSource = Callable[[str], Iterator[tuple[int, Row]] | None]  # file name -> (line, row) or None if absent


def directory_source(directory: Path) -> RowSource:
    """Rows of the CSV files in `directory`, read lazily, one at a time."""
    if not (directory / "actors.csv").is_file():
        raise Invalid(f"{directory} holds no actors.csv", field="dir")

    def rows(name: str) -> Iterator[tuple[int, Row]] | None:
        path = directory / name
        if not path.is_file():
            return None
        return _csv_file_rows(path, name)

    return rows


def _csv_file_rows(path: Path, name: str) -> Iterator[tuple[int, Row]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, strict=True)
        header = [h.strip().lower() for h in reader.fieldnames or []]
        reader.fieldnames = header
        missing = [c for c in REQUIRED.get(name, []) if c not in header]
        if missing:
            raise Invalid(f"{name}: the header lacks {', '.join(missing)}", field=name)
        try:
            for record in reader:
                if None in record:
                    raise Invalid(f"{name} line {reader.line_num}: more fields than the header", field=name)
                yield (
                    reader.line_num,
                    {k: (v.strip() or None) if v is not None else None for k, v in record.items()},
                )
        except (csv.Error, UnicodeDecodeError) as exc:
            raise Invalid(f"{name} line {reader.line_num}: {exc}", field=name) from exc


@dataclass
class LoadStats:
    rows: dict[str, int] = field(default_factory=dict)
    actors_created: int = 0
    actors_matched: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "actors_created": self.actors_created,
            "actors_matched": self.actors_matched,
            "skipped": self.skipped,
        }


class _Loader:
    def __init__(
        self, session: Session, source: RowSource, progress: Progress | None, scorer: str, threshold: float
    ) -> None:
        self.session = session
        self.conn = session.connection()
        self.source = source
        self.progress = progress
        self.stats = LoadStats()
        self.empty = (
            session.scalar(select(func.count()).select_from(select(Actor.id).limit(1).subquery())) == 0
            and session.scalar(select(func.count()).select_from(select(Letter.id).limit(1).subquery())) == 0
        )
        self.resolver = None if self.empty else Resolver(session, scorer=scorer, threshold=threshold)
        self.refs: dict[str, int] = {}
        self.bodies: dict[str, int] = {}
        self.parties: dict[str, int] = {}
        self.campaigns: dict[str, int] = {}
        self.letters: dict[str, int] = {}
        self.new_letters: set[int] = set()
        self.created_ids: set[tuple[str, int]] = set()  # (table, id) of bodies/parties/campaigns made here
        self.touched_letters: set[int] = set()

    # helpers
    def _batches(self, name: str) -> Iterator[list[tuple[int, Row]]]:
        rows = self.source(name)
        if rows is None:
            return
        batch: list[tuple[int, Row]] = []
        done = 0
        for item in rows:
            batch.append(item)
            if len(batch) >= BATCH:
                done += len(batch)
                yield batch
                batch = []
                if self.progress:
                    self.progress(name, done)
        if batch:
            done += len(batch)
            yield batch
        self.stats.rows[name] = done
        if self.progress:
            self.progress(name, done)

    def _skip(self, name: str, n: int = 1) -> None:
        self.stats.skipped[name] = self.stats.skipped.get(name, 0) + n

    @staticmethod
    def _need(name: str, line: int, row: Row, column: str) -> str:
        value = row.get(column)
        if value is None:
            raise Invalid(f"{name} line {line}: {column} is required", field=name)
        return value

    @staticmethod
    def _date(name: str, line: int, value: str | None) -> date | None:
        if value is None:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise Invalid(f"{name} line {line}: {value!r} is not a date", field=name) from None

    @staticmethod
    def _int(name: str, line: int, value: str | None) -> int | None:
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            raise Invalid(f"{name} line {line}: {value!r} is not a whole number", field=name) from None

    @staticmethod
    def _country(name: str, line: int, value: str | None) -> str | None:
        if value is None:
            return None
        if value.upper() not in COUNTRIES:
            raise Invalid(f"{name} line {line}: {value!r} is not an ISO 3166-1 alpha-2 code", field=name)
        return value.upper()

    def _lookup(self, table: dict[str, int], what: str, name: str, line: int, slug: str | None) -> int | None:
        if slug is None:
            return None
        if slug not in table:
            raise Invalid(f"{name} line {line}: unknown {what} {slug!r}", field=name)
        return table[slug]

    def _ref(self, name: str, line: int, row: Row) -> int:
        ref = self._need(name, line, row, "actor_ref")
        if ref not in self.refs:
            raise Invalid(f"{name} line {line}: actor_ref {ref!r} is not in actors.csv", field=name)
        return self.refs[ref]

    # tables
    def load_slugged(
        self, name: str, model: type[Body] | type[Party] | type[Campaign], into: dict[str, int]
    ) -> None:
        for slug, ident in self.session.execute(select(model.slug, model.id)):
            into[slug] = ident
        table = Base.metadata.tables[model.__tablename__]
        for batch in self._batches(name):
            values = []
            for line, row in batch:
                slug = self._need(name, line, row, "slug")
                if slug in into:
                    self._skip(name)
                    continue
                into[slug] = -1
                value: dict[str, Any] = {"slug": slug, "name": self._need(name, line, row, "name")}
                if model is Campaign:
                    value["description"] = row.get("description")
                else:
                    value["country"] = self._country(name, line, row.get("country"))
                values.append(value)
            if values:
                self.conn.execute(insert(table), values)
                slugs = [v["slug"] for v in values]
                for part in chunks(slugs):
                    for slug, ident in self.session.execute(
                        select(model.slug, model.id).where(model.slug.in_(part))
                    ):
                        into[slug] = ident
                        self.created_ids.add((model.__tablename__, ident))

    def load_actors(self) -> None:
        name = "actors.csv"
        for batch in self._batches(name):
            parsed = []
            for line, row in batch:
                ref = self._need(name, line, row, "ref")
                if ref in self.refs:
                    raise Invalid(f"{name} line {line}: ref {ref!r} appears twice", field=name)
                kind = self._need(name, line, row, "kind")
                if kind not in KINDS:
                    raise Invalid(f"{name} line {line}: kind must be person or organisation", field=name)
                try:
                    pairs = parse_identifiers(row.get("identifiers"))
                except ValueError as exc:
                    raise Invalid(f"{name} line {line}: identifiers: {exc}", field=name) from None
                actor_name = self._need(name, line, row, "name")
                parsed.append((ref, kind, actor_name, row, pairs, line))
            targets = self._match(parsed) if self.resolver is not None else [None] * len(parsed)
            new = [(p, t) for p, t in zip(parsed, targets, strict=True) if t is None]
            for p, t in zip(parsed, targets, strict=True):
                if t is not None:
                    self.refs[p[0]] = t
                    self.stats.actors_matched += 1
            values = [
                {
                    "kind": kind,
                    "name": actor_name,
                    "sort_name": row.get("sort_name"),
                    "country": self._country(name, line, row.get("country")),
                    "org_type": row.get("org_type"),
                    "match_name": match_name(actor_name),
                    "search_text": search_text(actor_name, row.get("sort_name")),
                }
                for (_ref, kind, actor_name, row, _pairs, line), _t in new
            ]
            ids = insert_actors(self.session, values)
            identifiers = []
            for ((ref, kind, _n, _r, pairs, _l), _t), value, new_id in zip(new, values, ids, strict=True):
                self.refs[ref] = new_id
                identifiers += [{"actor_id": new_id, "scheme": s, "value": v} for s, v in pairs]
                if self.resolver is not None:  # later batches match these by name too
                    self.resolver.add_new(kind, new_id, str(value["match_name"]))
            self.stats.actors_created += len(ids)
            if identifiers:
                self.conn.execute(insert(Base.metadata.tables["identifiers"]), identifiers)

    def _match(self, parsed: list[Any]) -> list[int | None]:
        """Existing (or earlier-loaded) actors for a batch of actor rows, as the import does."""
        resolver = self.resolver
        assert resolver is not None
        by_ident = resolver.by_identifiers(p for item in parsed for p in item[4])
        keys = [match_name(item[2]) for item in parsed]
        exact: dict[str, dict[str, list[int]]] = {}
        for kind in KINDS:
            exact[kind] = resolver.by_names(
                kind, (k for item, k in zip(parsed, keys, strict=True) if item[1] == kind)
            )
        out: list[int | None] = []
        for item, key in zip(parsed, keys, strict=True):
            ids = {by_ident[p] for p in item[4] if p in by_ident}
            if len(ids) == 1:
                out.append(ids.pop())
                continue
            if len(ids) > 1:
                raise Invalid(
                    f"actors.csv line {item[5]}: its identifiers belong to different actors",
                    field="actors.csv",
                )
            names = exact[item[1]].get(key, [])
            if len(names) == 1:
                out.append(names[0])
                continue
            if names:
                out.append(None)  # ambiguous: a new actor
                continue
            best, _close = decide_fuzzy(resolver.fuzzy(item[1], key))
            out.append(best.id if best else None)
        return out

    def load_memberships(self) -> None:
        name = "memberships.csv"
        table = Base.metadata.tables["memberships"]
        for batch in self._batches(name):
            values = []
            for line, row in batch:
                start = self._date(name, line, row.get("start_date"))
                if start is None:
                    raise Invalid(f"{name} line {line}: start_date is required", field=name)
                values.append(
                    {
                        "actor_id": self._ref(name, line, row),
                        "body_id": self._lookup(
                            self.bodies, "body", name, line, self._need(name, line, row, "body")
                        ),
                        "party_id": self._lookup(self.parties, "party", name, line, row.get("party")),
                        "constituency": row.get("constituency"),
                        "start_date": start,
                        "end_date": self._date(name, line, row.get("end_date")),
                    }
                )
            if not self.empty:
                keys = [(v["actor_id"], v["body_id"], v["start_date"]) for v in values]
                existing = set()
                for part in chunks(keys):
                    stmt = select(Membership.actor_id, Membership.body_id, Membership.start_date).where(
                        tuple_(Membership.actor_id, Membership.body_id, Membership.start_date).in_(list(part))
                    )
                    existing |= {tuple(r) for r in self.session.execute(stmt)}
                kept = [v for v in values if (v["actor_id"], v["body_id"], v["start_date"]) not in existing]
                self._skip(name, len(values) - len(kept))
                values = kept
            if values:
                self.conn.execute(insert(table), values)

    def load_letters(self) -> None:
        name = "letters.csv"
        for slug, ident in self.session.execute(select(Letter.slug, Letter.id)):
            self.letters[slug] = ident
        table = Base.metadata.tables["letters"]
        for batch in self._batches(name):
            values = []
            for line, row in batch:
                slug = self._need(name, line, row, "slug")
                if slug in self.letters:
                    self._skip(name)
                    continue
                self.letters[slug] = -1
                title = self._need(name, line, row, "title")
                values.append(
                    {
                        "slug": slug,
                        "title": title,
                        "summary": row.get("summary"),
                        "body": row.get("body"),
                        "language": row.get("language"),
                        "published_on": self._date(name, line, row.get("published_on")),
                        "status": row.get("status") or "published",
                        "claimed_signatory_count": self._int(name, line, row.get("claimed_signatory_count")),
                        "campaign_id": self._lookup(
                            self.campaigns, "campaign", name, line, row.get("campaign")
                        ),
                        "search_text": search_text(title, row.get("summary"), row.get("body")),
                    }
                )
            if values:
                self.conn.execute(insert(table), values)
                for part in chunks([v["slug"] for v in values]):
                    for slug, ident in self.session.execute(
                        select(Letter.slug, Letter.id).where(Letter.slug.in_(part))
                    ):
                        self.letters[slug] = ident
                        self.new_letters.add(ident)

    def load_letter_children(self, name: str) -> None:
        """claims, sources, events: only for letters this load created."""
        table = Base.metadata.tables[name.removesuffix(".csv")]
        for batch in self._batches(name):
            values = []
            for line, row in batch:
                letter_id = self._lookup(self.letters, "letter", name, line, row.get("letter"))
                campaign_id = (
                    self._lookup(self.campaigns, "campaign", name, line, row.get("campaign"))
                    if name == "events.csv"
                    else None
                )
                if letter_id is not None and letter_id not in self.new_letters:
                    self._skip(name)
                    continue
                if letter_id is None and (name != "events.csv" or campaign_id is None):
                    raise Invalid(f"{name} line {line}: letter is required", field=name)
                if letter_id is None and ("campaigns", campaign_id) not in self.created_ids:
                    self._skip(name)  # an event of a campaign that existed before this load
                    continue
                if name == "claims.csv":
                    value: dict[str, Any] = {
                        "letter_id": letter_id,
                        "count": self._int(name, line, row.get("count")),
                        "wording": row.get("wording"),
                        "url": row.get("url"),
                    }
                elif name == "sources.csv":
                    value = {
                        "letter_id": letter_id,
                        "label": row.get("label"),
                        "url": self._need(name, line, row, "url"),
                    }
                else:
                    day = self._date(name, line, self._need(name, line, row, "date"))
                    value = {
                        "letter_id": letter_id,
                        "campaign_id": campaign_id,
                        "date": day,
                        "kind": self._need(name, line, row, "kind"),
                        "note": row.get("note"),
                        "url": row.get("url"),
                    }
                values.append(value)
            if values:
                self.conn.execute(insert(table), values)

    def load_pairs(self, name: str) -> None:
        """signatures and recipients (letter × actor): an existing pair is skipped."""
        signatures = name == "signatures.csv"
        table = Base.metadata.tables[name.removesuffix(".csv")]
        seen: set[tuple[int, int, str]] = set()
        for batch in self._batches(name):
            values: list[dict[str, Any]] = []
            for line, row in batch:
                letter_id = self._lookup(
                    self.letters, "letter", name, line, self._need(name, line, row, "letter")
                )
                assert letter_id is not None
                actor_id = self._ref(name, line, row)
                if signatures:
                    signed_on = self._date(name, line, self._need(name, line, row, "signed_on"))
                    values.append(
                        {
                            "letter_id": letter_id,
                            "actor_id": actor_id,
                            "signed_on": signed_on,
                            "capacity": row.get("capacity"),
                            "affiliation": row.get("affiliation"),
                            "position": self._int(name, line, row.get("position")),
                            "status": row.get("status") or "confirmed",
                            "withdrawn_on": self._date(name, line, row.get("withdrawn_on")),
                            "source": row.get("source"),
                        }
                    )
                else:
                    values.append(
                        {
                            "letter_id": letter_id,
                            "actor_id": actor_id,
                            "role": row.get("role") or "to",
                            "capacity": row.get("capacity"),
                        }
                    )
            kept = []
            for v in values:
                key = (v["letter_id"], v["actor_id"], "" if signatures else v["role"])
                if key in seen:
                    self._skip(name)
                    continue
                seen.add(key)
                kept.append(v)
            if not self.empty:
                model = Signature if signatures else Recipient
                existing: set[tuple[int, int]] = set()
                pairs = sorted({(v["letter_id"], v["actor_id"]) for v in kept})
                for part in chunks(pairs):
                    stmt = select(model.letter_id, model.actor_id).where(
                        tuple_(model.letter_id, model.actor_id).in_(list(part))
                    )
                    existing |= {(a, b) for a, b in self.session.execute(stmt)}
                before = len(kept)
                kept = [v for v in kept if (v["letter_id"], v["actor_id"]) not in existing]
                self._skip(name, before - len(kept))
            if kept:
                self.touched_letters |= {v["letter_id"] for v in kept}
                self._insert_pairs(table.name, kept)

    def _insert_pairs(self, table_name: str, values: list[dict[str, Any]]) -> None:
        insert_rows(self.session, table_name, values)  # COPY on PostgreSQL


def load_registry(
    session: Session,
    key_name: str,
    source: RowSource,
    *,
    progress: Progress | None = None,
    scorer: str = "token_sort_ratio",
    threshold: float = 92,
) -> LoadStats:
    """Load a dump into the registry, in the caller's transaction; one change record (`load`)."""
    loader = _Loader(session, source, progress, scorer, threshold)
    empty = loader.empty
    loader.load_slugged("bodies.csv", Body, loader.bodies)
    loader.load_slugged("parties.csv", Party, loader.parties)
    loader.load_slugged("campaigns.csv", Campaign, loader.campaigns)
    loader.load_actors()
    loader.load_memberships()
    loader.load_letters()
    for name in ("claims.csv", "sources.csv", "events.csv"):
        loader.load_letter_children(name)
    loader.load_pairs("signatures.csv")
    loader.load_pairs("recipients.csv")
    # Signatures, and memberships of actors that had signed already, move the rollups of many
    # letters at once: recompute them all (this also bumps every letter's version).
    rollups.rebuild(session)
    stats = loader.stats
    record_change(
        session, key_name, "load", "registry", "dump", after={**stats.as_dict(), "into_empty_registry": empty}
    )
    session.flush()
    return stats


# --- Popolo -------------------------------------------------------------------------------------

BODY_CLASSIFICATIONS = ("legislature", "chamber")
PARTY_CLASSIFICATION = "party"


def export_popolo(session: Session, out: IO[str]) -> dict[str, int]:
    """Write a Popolo document: persons, organizations (organisation actors, bodies as
    `legislature`, parties as `party`), memberships. Streams, one item per line."""
    counts = {"persons": 0, "organizations": 0, "memberships": 0}
    out.write('{"persons": [')
    first = True
    for kind, key in (("person", "persons"), ("organisation", "organizations")):
        if kind == "organisation":
            out.write('\n], "organizations": [')
            first = True
        for ref, _kind, name, sort_name, country, org_type, identifiers in _actor_rows(session, kind):
            item: dict[str, Any] = {"id": f"actor-{ref}", "name": name}
            if sort_name:
                item["sort_name"] = sort_name
            if identifiers:
                item["identifiers"] = [
                    {"scheme": s, "identifier": v} for s, v in parse_identifiers(identifiers)
                ]
            if country:
                item["area_id"] = country
            if org_type:
                item["classification"] = org_type
            out.write(("" if first else ",") + "\n" + json.dumps(item, ensure_ascii=False))
            first = False
            counts[key] += 1
    for model, classification in ((Body, "legislature"), (Party, PARTY_CLASSIFICATION)):
        prefix = "body" if model is Body else "party"
        for slug, name, country in _stream(
            session, select(model.slug, model.name, model.country).order_by(model.id)
        ):
            item = {"id": f"{prefix}-{slug}", "name": name, "classification": classification}
            if country:
                item["area_id"] = country
            out.write(("" if first else ",") + "\n" + json.dumps(item, ensure_ascii=False))
            first = False
            counts["organizations"] += 1
    out.write('\n], "memberships": [')
    first = True
    for actor_id, body_slug, party_slug, constituency, start, end in _table_rows(session, "memberships.csv"):
        item = {"person_id": f"actor-{actor_id}", "organization_id": f"body-{body_slug}"}
        if party_slug:
            item["on_behalf_of_id"] = f"party-{party_slug}"
        if constituency:
            item["area"] = {"name": constituency}
        item["start_date"] = start.isoformat()
        if end:
            item["end_date"] = end.isoformat()
        out.write(("" if first else ",") + "\n" + json.dumps(item, ensure_ascii=False))
        first = False
        counts["memberships"] += 1
    out.write("\n]}\n")
    return counts


def popolo_source(document: dict[str, Any]) -> RowSource:
    """A dump `Source` over a Popolo document: persons and organizations become actors
    (organizations classified `legislature`/`chamber` become bodies, `party` parties)."""
    persons = document.get("persons") or []
    organizations = document.get("organizations") or []
    memberships = document.get("memberships") or []
    if not all(isinstance(x, list) for x in (persons, organizations, memberships)):
        raise Invalid("persons, organizations and memberships must be arrays", field="popolo")
    bodies = {
        o.get("id"): o
        for o in organizations
        if isinstance(o, dict) and o.get("classification") in BODY_CLASSIFICATIONS
    }
    parties = {
        o.get("id"): o
        for o in organizations
        if isinstance(o, dict) and o.get("classification") == PARTY_CLASSIFICATION
    }

    def slug_of(item: dict[str, Any], prefix: str) -> str:
        ident = str(item.get("id") or "")
        return ident[len(prefix) + 1 :] if ident.startswith(prefix + "-") else ident

    def area(item: dict[str, Any]) -> str | None:
        value = item.get("area_id")
        return value if isinstance(value, str) and len(value) == 2 else None

    def identifiers(item: dict[str, Any]) -> str | None:
        pairs = [
            (str(i.get("scheme")), str(i.get("identifier")))
            for i in item.get("identifiers") or []
            if isinstance(i, dict) and i.get("scheme") and i.get("identifier")
        ]
        return format_identifiers(pairs) or None

    def rows(name: str) -> Iterator[tuple[int, Row]] | None:
        if name in ("bodies.csv", "parties.csv"):
            table, prefix = (bodies, "body") if name == "bodies.csv" else (parties, "party")
            return (
                (n, {"slug": slug_of(o, prefix), "name": o.get("name"), "country": area(o)})
                for n, o in enumerate(table.values(), 1)
            )
        if name == "actors.csv":

            def actors() -> Iterator[tuple[int, Row]]:
                n = 0
                for kind, items in (("person", persons), ("organisation", organizations)):
                    for item in items:
                        if not isinstance(item, dict):
                            raise Invalid(f"{kind} items must be objects", field="popolo")
                        if item.get("id") in bodies or item.get("id") in parties:
                            continue
                        n += 1
                        classification = item.get("classification")
                        yield (
                            n,
                            {
                                "ref": str(item.get("id") or f"{kind}-{n}"),
                                "kind": kind,
                                "name": item.get("name"),
                                "sort_name": item.get("sort_name"),
                                "country": area(item),
                                "org_type": classification
                                if kind == "organisation"
                                and classification
                                in (
                                    "ngo",
                                    "union",
                                    "faith",
                                    "academic",
                                    "business",
                                    "government",
                                    "intergovernmental",
                                    "other",
                                )
                                else None,
                                "identifiers": identifiers(item),
                            },
                        )

            return actors()
        if name == "memberships.csv":

            def seats() -> Iterator[tuple[int, Row]]:
                for n, m in enumerate(memberships, 1):
                    if not isinstance(m, dict):
                        raise Invalid("membership items must be objects", field="popolo")
                    org = m.get("organization_id")
                    if org not in bodies:
                        continue  # a membership of a non-body organisation: not a seat
                    party = m.get("on_behalf_of_id")
                    area_value = m.get("area")
                    yield (
                        n,
                        {
                            "actor_ref": m.get("person_id"),
                            "body": slug_of(bodies[org], "body"),
                            "party": slug_of(parties[party], "party") if party in parties else None,
                            "constituency": area_value.get("name") if isinstance(area_value, dict) else None,
                            "start_date": m.get("start_date"),
                            "end_date": m.get("end_date"),
                        },
                    )

            return seats()
        return None

    return rows
