"""`undersigned import DIR`: a dump loaded into the registry, in the caller's one transaction,
with one change record (`load`).

Each file is read row by row and written in batches of `BATCH` rows with executemany (ids of new
actors from `inserts.insert_actors`); on PostgreSQL actors, memberships and signatures take the
bulk path (`postgres`) and fall back to the rows here when it does not take a file. What stays in
memory is the map from each dump's `ref` to the new actor id (an int per actor) and the slug maps
of bodies, parties, campaigns and letters.

Into an empty registry (no actors, no letters) every row is kept as it is. Into a registry with
data, actors are matched as the import endpoint does (identifier, exact normalised name, a
single clear fuzzy candidate; an ambiguous one becomes a new actor), bodies, parties, campaigns
and letters by slug (existing ones are left as they are, and so are the claims, sources and
events of letters that existed), and a signature, recipient or membership that exists already
is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import func, insert, select, text, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from app import pairs, rollups
from app.actors.identity import refresh_names
from app.changes import record_change
from app.errors import Invalid
from app.imports.dump import postgres
from app.imports.dump.files import (
    BATCH,
    DirectorySource,
    Progress,
    Row,
    RowSource,
    check_choice,
    check_country,
    check_date,
    check_int,
    check_url,
    need,
)
from app.imports.dump.indexes import indexed_after
from app.imports.dump.postgres import BULK_FAILURES
from app.imports.inserts import insert_actors, insert_rows
from app.imports.matching import Resolver, chunks, decide_fuzzy
from app.imports.parsing import parse_identifiers
from app.models import (
    Actor,
    ActorAlias,
    Base,
    Body,
    Campaign,
    Letter,
    Membership,
    Party,
    Recipient,
    Signature,
)
from app.names import variant_key
from app.text import match_name, search_text
from app.vocabulary import (
    ACTOR_KINDS,
    EVENT_KINDS,
    LETTER_STATUSES,
    ORG_TYPES,
    RECIPIENT_ROLES,
    SIGNATURE_STATUSES,
)


@dataclass
class LoadStats:
    rows: dict[str, int] = field(default_factory=dict)
    actors_created: int = 0
    actors_matched: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    # Files the PostgreSQL bulk path handed to the row-by-row path (a row it does not take as it
    # is, or a bad row whose line the row-by-row path then reports). Not part of the change record.
    row_by_row: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "actors_created": self.actors_created,
            "actors_matched": self.actors_matched,
            "skipped": self.skipped,
        }


class Loader:
    """One load: the files read in order (`load_registry`), each row by row, or on PostgreSQL by
    the bulk path where it takes the file (`_either`). It holds what later files refer to: the
    dump's refs mapped to actor ids (in `refs`, or the bulk path's table `dump_refs`) and the
    ids of bodies, parties, campaigns and letters by slug."""

    def __init__(
        self,
        session: Session,
        source: RowSource,
        progress: Progress | None,
        scorer: str,
        threshold: float,
        bulk: bool = True,
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
        # The bulk path: PostgreSQL, files read from a directory (actors from any source).
        self.bulk = bulk and self.conn.dialect.name == "postgresql"
        # SQLite loads row by row; into an empty registry its CREATE INDEX indexes are built once
        # at the end of each table.
        self.sqlite_empty = self.empty and self.conn.dialect.name == "sqlite"
        self.files = source if isinstance(source, DirectorySource) else None
        # Where the map from each dump's ref to its actor id is: `refs` (row-by-row path) and/or
        # the temporary table `dump_refs` (bulk path); each is filled from the other on demand.
        self.refs: dict[str, int] = {}
        self.refs_in_memory = True
        self.refs_in_table = False
        self.bodies: dict[str, int] = {}
        self.parties: dict[str, int] = {}
        self.campaigns: dict[str, int] = {}
        self.letters: dict[str, int] = {}
        self.new_letters: set[int] = set()
        self.created_ids: set[tuple[str, int]] = set()  # (table, id) of bodies/parties/campaigns made here
        if self.bulk:
            postgres.prepare(session)

    # helpers
    def report(self, step: str, done: int, total: int | None = None) -> None:
        if self.progress:
            self.progress(step, done, total)

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
                self.report(name, done)
        if batch:
            done += len(batch)
            yield batch
        self.stats.rows[name] = done
        self.report(name, done, done)

    def skip(self, name: str, n: int = 1) -> None:
        if n:
            self.stats.skipped[name] = self.stats.skipped.get(name, 0) + n

    def _either(self, name: str, bulk: Callable[[], None], rows: Callable[[], None]) -> None:
        """`bulk()` under a savepoint; if it fails, everything it did is undone and `rows()` (the
        row-by-row path) loads the file, or reports its bad row."""
        stats = self.stats
        saved = (
            dict(stats.rows),
            dict(stats.skipped),
            stats.actors_created,
            self.refs_in_table,
            self.refs_in_memory,
        )
        nested = self.session.begin_nested()
        try:
            bulk()
        except BULK_FAILURES:
            nested.rollback()
            stats.rows, stats.skipped, stats.actors_created, self.refs_in_table, self.refs_in_memory = saved
            stats.row_by_row.append(name)
            self.report(f"{name} (row by row)", 0)
            rows()
        else:
            nested.commit()

    def _memory_refs(self) -> None:
        """The row-by-row path reads `refs`."""
        if not self.refs_in_memory:
            self.refs = {}
            for ref, ident in self.session.execute(text("SELECT ref, actor_id FROM dump_refs")):
                self.refs[ref] = ident
            self.refs_in_memory = True

    def _lookup(self, table: dict[str, int], what: str, name: str, line: int, slug: str | None) -> int | None:
        if slug is None:
            return None
        if slug not in table:
            raise Invalid(f"{name} line {line}: unknown {what} {slug!r}", field=name)
        return table[slug]

    def _ref(self, name: str, line: int, row: Row) -> int:
        ref = need(name, line, row, "actor_ref")
        if ref not in self.refs:
            raise Invalid(f"{name} line {line}: actor_ref {ref!r} is not in actors.csv", field=name)
        return self.refs[ref]

    def actor_fields(self, name: str, line: int, row: Row) -> tuple[str, str, str, list[tuple[str, str]]]:
        """ref, kind, name and identifiers of an actors.csv row, checked."""
        ref = need(name, line, row, "ref")
        if ref in self.refs:
            raise Invalid(f"{name} line {line}: ref {ref!r} appears twice", field=name)
        kind = need(name, line, row, "kind")
        if kind not in ACTOR_KINDS:
            raise Invalid(f"{name} line {line}: kind must be person or organisation", field=name)
        try:
            pairs = parse_identifiers(row.get("identifiers"))
        except ValueError as exc:
            raise Invalid(f"{name} line {line}: identifiers: {exc}", field=name) from None
        return ref, kind, need(name, line, row, "name"), pairs

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
                slug = need(name, line, row, "slug")
                if slug in into:
                    self.skip(name)
                    continue
                into[slug] = -1
                value: dict[str, Any] = {"slug": slug, "name": need(name, line, row, "name")}
                if model is Campaign:
                    value["description"] = row.get("description")
                else:
                    value["country"] = check_country(name, line, row.get("country"))
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

    @contextmanager
    def _indexes_at_the_end(self, tables: list[str], what: str) -> Iterator[None]:
        """The row-by-row path into an empty SQLite registry builds the tables' indexes once, at
        the end (elsewhere it keeps them)."""
        step = f"{what}: indexing"
        with indexed_after(self.session, tables if self.sqlite_empty else [], lambda: self.report(step, 0)):
            yield
        if self.sqlite_empty:
            self.report(step, 0, 0)

    def load_actors(self) -> None:
        if self.bulk and self.empty:
            self._either("actors.csv", lambda: postgres.load_actors(self), self._actors_rows)
        else:
            with self._indexes_at_the_end(["actors", "identifiers"], "actors"):
                self._actors_rows()

    def _actors_rows(self) -> None:
        self._memory_refs()
        self.refs_in_table = False
        name = "actors.csv"
        for batch in self._batches(name):
            parsed = []
            for line, row in batch:
                ref, kind, actor_name, pairs = self.actor_fields(name, line, row)
                self.refs[ref] = -1  # (its id below) so that a ref twice in one batch is caught
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
                    "country": check_country(name, line, row.get("country")),
                    "org_type": check_choice(name, line, row, "org_type", ORG_TYPES),
                    "match_name": match_name(actor_name),
                    "variant_key": variant_key(actor_name, kind),
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
        for kind in ACTOR_KINDS:
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
        path = self.files.path("memberships.csv") if self.bulk and self.files else None
        if path is None:
            with self._indexes_at_the_end(["memberships"], "memberships"):
                self._memberships_rows()
        else:
            self._either(
                "memberships.csv", lambda: postgres.load_memberships(self, path), self._memberships_rows
            )

    def _memberships_rows(self) -> None:
        self._memory_refs()
        name = "memberships.csv"
        table = Base.metadata.tables["memberships"]
        for batch in self._batches(name):
            values = []
            for line, row in batch:
                start = check_date(name, line, row.get("start_date"))
                if start is None:
                    raise Invalid(f"{name} line {line}: start_date is required", field=name)
                values.append(
                    {
                        "actor_id": self._ref(name, line, row),
                        "body_id": self._lookup(
                            self.bodies, "body", name, line, need(name, line, row, "body")
                        ),
                        "party_id": self._lookup(self.parties, "party", name, line, row.get("party")),
                        "constituency": row.get("constituency"),
                        "start_date": start,
                        "end_date": check_date(name, line, row.get("end_date")),
                    }
                )
            if not self.empty:
                keys = [(v["actor_id"], v["body_id"], v["start_date"]) for v in values]
                existing = set()
                for part in chunks(sorted(set(keys))):
                    stmt = select(Membership.actor_id, Membership.body_id, Membership.start_date).where(
                        tuple_(Membership.actor_id, Membership.body_id, Membership.start_date).in_(list(part))
                    )
                    existing |= {tuple(r) for r in self.session.execute(stmt)}
                kept = []
                for v, key in zip(values, keys, strict=True):
                    if key not in existing:  # present already, or earlier in the file
                        existing.add(key)
                        kept.append(v)
                self.skip(name, len(values) - len(kept))
                values = kept
            if values:
                self.conn.execute(insert(table), values)

    def load_aliases(self) -> None:
        """Other names of the actors loaded (few: row by row); their search text takes them in.
        Into a registry with data, an actor's alias it has already is skipped."""
        name = "aliases.csv"
        rows = self.source(name)
        if rows is None:
            return
        self._memory_refs()
        table = Base.metadata.tables["actor_aliases"]
        touched: set[int] = set()
        batch: list[dict[str, Any]] = []
        have = {
            (int(a), str(k))
            for a, k in self.session.execute(select(ActorAlias.actor_id, ActorAlias.match_name))
        }
        kinds: dict[int, str] = {}
        for line, row in rows:
            actor_id = self._ref(name, line, row)
            alias = need(name, line, row, "name")
            key = match_name(alias)
            if (actor_id, key) in have:
                self.skip(name)
                continue
            have.add((actor_id, key))
            if actor_id not in kinds:
                kinds[actor_id] = (
                    self.session.scalar(select(Actor.kind).where(Actor.id == actor_id)) or "person"
                )
            batch.append(
                {
                    "actor_id": actor_id,
                    "name": alias,
                    "match_name": key,
                    "variant_key": variant_key(alias, kinds[actor_id]),
                }
            )
            touched.add(actor_id)
            self.stats.rows[name] = self.stats.rows.get(name, 0) + 1
        if batch:
            self.conn.execute(insert(table), batch)
        for part in chunks(sorted(touched)):
            actors = self.session.scalars(
                select(Actor).where(Actor.id.in_(list(part))).options(selectinload(Actor.aliases))
            )
            for actor in actors:
                refresh_names(actor)
        self.session.flush()

    def load_letters(self) -> None:
        name = "letters.csv"
        for slug, ident in self.session.execute(select(Letter.slug, Letter.id)):
            self.letters[slug] = ident
        table = Base.metadata.tables["letters"]
        for batch in self._batches(name):
            values = []
            for line, row in batch:
                slug = need(name, line, row, "slug")
                if slug in self.letters:
                    self.skip(name)
                    continue
                self.letters[slug] = -1
                title = need(name, line, row, "title")
                values.append(
                    {
                        "slug": slug,
                        "title": title,
                        "summary": row.get("summary"),
                        "body": row.get("body"),
                        "language": row.get("language"),
                        "published_on": check_date(name, line, row.get("published_on")),
                        "status": check_choice(name, line, row, "status", LETTER_STATUSES) or "published",
                        "claimed_signatory_count": check_int(name, line, row.get("claimed_signatory_count")),
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
                    self.skip(name)
                    continue
                if letter_id is None and (name != "events.csv" or campaign_id is None):
                    raise Invalid(f"{name} line {line}: letter is required", field=name)
                if letter_id is None and ("campaigns", campaign_id) not in self.created_ids:
                    self.skip(name)  # an event of a campaign that existed before this load
                    continue
                if name == "claims.csv":
                    value: dict[str, Any] = {
                        "letter_id": letter_id,
                        "count": check_int(name, line, row.get("count")),
                        "wording": row.get("wording"),
                        "url": check_url(name, line, row, "url"),
                    }
                elif name == "sources.csv":
                    value = {
                        "letter_id": letter_id,
                        "label": row.get("label"),
                        "url": check_url(name, line, row, "url") or need(name, line, row, "url"),
                    }
                else:
                    day = check_date(name, line, need(name, line, row, "date"))
                    value = {
                        "letter_id": letter_id,
                        "campaign_id": campaign_id,
                        "date": day,
                        "kind": check_choice(name, line, row, "kind", EVENT_KINDS)
                        or need(name, line, row, "kind"),
                        "note": row.get("note"),
                        "url": check_url(name, line, row, "url"),
                    }
                values.append(value)
            if values:
                self.conn.execute(insert(table), values)

    def load_signatures(self) -> None:
        path = self.files.path("signatures.csv") if self.bulk and self.files else None
        if path is None:
            with self._indexes_at_the_end(["signatures"], "signatures"):
                self.load_pairs("signatures.csv")
        else:
            self._either(
                "signatures.csv",
                lambda: postgres.load_signatures(self, path),
                lambda: self.load_pairs("signatures.csv"),
            )

    def load_pairs(self, name: str) -> None:
        """signatures and recipients (letter × actor), row by row: an existing pair is skipped."""
        if self.files is not None and self.files.path(name) is None:
            return
        self._memory_refs()
        signatures = name == "signatures.csv"
        table = Base.metadata.tables[name.removesuffix(".csv")]
        seen: set[tuple[int, int, str]] = set()
        for batch in self._batches(name):
            values: list[dict[str, Any]] = []
            for line, row in batch:
                letter_id = self._lookup(self.letters, "letter", name, line, need(name, line, row, "letter"))
                assert letter_id is not None
                actor_id = self._ref(name, line, row)
                if signatures:
                    signed_on = check_date(name, line, need(name, line, row, "signed_on"))
                    values.append(
                        {
                            "letter_id": letter_id,
                            "actor_id": actor_id,
                            "signed_on": signed_on,
                            "capacity": row.get("capacity"),
                            "affiliation": row.get("affiliation"),
                            "position": check_int(name, line, row.get("position")),
                            "status": check_choice(name, line, row, "status", SIGNATURE_STATUSES)
                            or "confirmed",
                            "withdrawn_on": check_date(name, line, row.get("withdrawn_on")),
                            "source": check_url(name, line, row, "source"),
                        }
                    )
                else:
                    values.append(
                        {
                            "letter_id": letter_id,
                            "actor_id": actor_id,
                            "role": check_choice(name, line, row, "role", RECIPIENT_ROLES) or "to",
                            "capacity": row.get("capacity"),
                        }
                    )
            # A pair earlier in the file is skipped. Signatures: within the batch by a set, across
            # batches by the database (the earlier one is in), so that no set of every pair of
            # the file is held; recipients (a few) by a set of the file's.
            if signatures:
                seen = set()
            kept = []
            for v in values:
                key = (v["letter_id"], v["actor_id"], "" if signatures else v["role"])
                if key in seen:
                    self.skip(name)
                    continue
                seen.add(key)
                kept.append(v)
            if not kept:
                continue
            if self.empty and signatures:
                try:  # into an empty registry a pair is there only if it was earlier in the file
                    with self.session.begin_nested():
                        insert_rows(self.session, table.name, kept)
                    continue
                except (IntegrityError, psycopg.errors.IntegrityError):
                    pass
            if not self.empty or signatures:
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
                self.skip(name, before - len(kept))
            if kept:
                insert_rows(self.session, table.name, kept)  # COPY on PostgreSQL

    def finish(self) -> None:
        """Fresh planner statistics for the tables just filled (the rollups' rebuild is planned
        with them), and the staging tables gone."""
        if not self.bulk:
            return
        postgres.finish(self)


def load_registry(
    session: Session,
    key_name: str,
    source: RowSource,
    *,
    progress: Progress | None = None,
    scorer: str = "token_sort_ratio",
    threshold: float = 92,
    bulk: bool = True,
) -> LoadStats:
    """Load a dump into the registry, in the caller's transaction; one change record (`load`).

    On PostgreSQL actors, memberships and signatures take the bulk path (see above; `bulk=False`
    loads every file row by row). Into an empty registry the bulk path drops and remakes
    indexes: the tables it loads, and the rollups, stay locked until the caller commits."""
    with _roomy_sqlite_cache(session):
        return _load(session, key_name, source, progress, scorer, threshold, bulk)


@contextmanager
def _roomy_sqlite_cache(session: Session) -> Iterator[None]:
    """On SQLite, a page cache of 64 MB for the load (with the default 2 MB every index insert
    and the rollups' grouping read pages from the OS; 256 MB saved 4 s more of 73 s at scale 1,
    for 285 MB more memory), the connection's own after."""
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    previous = int(session.execute(text("PRAGMA cache_size")).scalar_one())
    session.execute(text("PRAGMA cache_size = -65536"))
    try:
        yield
    finally:
        session.execute(text(f"PRAGMA cache_size = {previous}"))


def _load(
    session: Session,
    key_name: str,
    source: RowSource,
    progress: Progress | None,
    scorer: str,
    threshold: float,
    bulk: bool,
) -> LoadStats:
    loader = Loader(session, source, progress, scorer, threshold, bulk)
    empty = loader.empty
    loader.load_slugged("bodies.csv", Body, loader.bodies)
    loader.load_slugged("parties.csv", Party, loader.parties)
    loader.load_slugged("campaigns.csv", Campaign, loader.campaigns)
    loader.load_actors()
    loader.load_memberships()
    loader.load_aliases()
    loader.load_letters()
    for name in ("claims.csv", "sources.csv", "events.csv"):
        loader.load_letter_children(name)
    loader.load_signatures()
    loader.load_pairs("recipients.csv")
    loader.finish()
    # Signatures, and memberships of actors that had signed already, move the rollups of many
    # letters at once: recompute them all (this also bumps every letter's version). Into an
    # empty registry nobody else can be reading them: the rebuild remakes their indexes.
    if progress:
        progress("rollups", 0, None)
    count = rollups.rebuild(session, exclusive=empty and loader.bulk)
    if progress:
        progress("rollups", count, count)
    # The pair counts likewise, in one statement over all the signatures; into an empty
    # registry straight into the table, its keys made once after it.
    if progress:
        progress("pairs", 0, None)
    exclusive = empty and loader.bulk
    with indexed_after(
        session, ["letter_pairs"] if exclusive else [], lambda: loader.report("pairs: indexing", 0)
    ):
        count = pairs.rebuild(session, exclusive=exclusive)
        if progress:
            progress("pairs", count, count)
    if exclusive:
        loader.report("pairs: indexing", 0, 0)
    stats = loader.stats
    record_change(
        session, key_name, "load", "registry", "dump", after={**stats.as_dict(), "into_empty_registry": empty}
    )
    session.flush()
    return stats
