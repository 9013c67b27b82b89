"""One actor per identity: finding the actor a new one would duplicate, aliases, merging actors
into one, the redirects merged ids leave, and the queue of pairs that are probably one.

The rule of identity (SPEC §6): two actors are one when they share an identifier, or have the
same kind and the same normalised name (`app.text.match_name`, or an alias's) and, for
organisations, no different country. Every write path that makes an actor asks `same_actors`
first, under `name_lock` (PostgreSQL: a transaction-scoped advisory lock per bucket of names,
so that two writers of one new name take turns and the second finds the first's actor; SQLite
writers take turns on the database already). Variants that are only *possibly* one
(`app.names.variant_key`, fuzzy scores) are never merged silently: they are shown as possible
matches and in the review queue.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy import Text, and_, cast, delete, func, or_, select, text, union, update
from sqlalchemy.orm import Session, aliased, selectinload

from app import rollups
from app.auth import Writer
from app.changes import record_change, snapshot
from app.errors import Conflict, Invalid, Moved, NotFound
from app.models import (
    Actor,
    ActorAlias,
    ActorRedirect,
    DistinctActors,
    Identifier,
    Membership,
    Recipient,
    Signature,
)
from app.models.base import utcnow
from app.names import differ_by_distinguishing, variant_key
from app.text import match_name, search_text

LOCK_NAMESPACE = 0x5AC7  # the first key of the advisory locks taken for names
LOCK_BUCKETS = 1024  # names share a lock when their hashes meet: at most this many locks per import


# --- finding the same actor -----------------------------------------------------------------


def name_lock(session: Session, names: Iterable[tuple[str, str]]) -> None:
    """Take the advisory locks of `(kind, match_name)` pairs until the transaction ends
    (PostgreSQL), in ascending order so that writers never wait on each other in a circle."""
    if session.get_bind().dialect.name != "postgresql":
        return
    buckets = sorted({zlib.crc32(f"{kind}\x1f{key}".encode()) % LOCK_BUCKETS for kind, key in names})
    if buckets:
        session.execute(
            text("SELECT pg_advisory_xact_lock(:ns, b) FROM unnest(CAST(:buckets AS int[])) AS b ORDER BY b"),
            {"ns": LOCK_NAMESPACE, "buckets": buckets},
        )


def identifier_owner(session: Session, pairs: list[tuple[str, str]]) -> int | None:
    """The one actor holding any of `pairs`; 409 when they belong to different actors."""
    if not pairs:
        return None
    clause = or_(*(and_(Identifier.scheme == s, Identifier.value == v) for s, v in pairs))
    owners = set(session.scalars(select(Identifier.actor_id).where(clause)))
    if len(owners) > 1:
        raise Conflict(
            f"the identifiers given belong to different actors ({', '.join(map(str, sorted(owners)))})",
            extra={"actor_ids": sorted(owners)},
        )
    return owners.pop() if owners else None


def same_actors(
    session: Session,
    kind: str,
    name: str,
    country: str | None,
    identifiers: list[tuple[str, str]],
    *,
    exclude: int | None = None,
) -> list[Actor]:
    """Existing actors that a new actor of this kind, name, country and identifiers would be by
    the rule of identity (module docstring), by name: the same normalised name or alias, the
    same kind, for organisations no different country, and no other value of a scheme given."""
    key = match_name(name)
    # One index lookup in each table, as a union: with `match_name = … OR id IN (aliases)`
    # PostgreSQL can use neither index and filters every actor of the registry.
    by_name = select(Actor.id).where(Actor.match_name == key)
    by_alias = select(ActorAlias.actor_id).where(ActorAlias.match_name == key)
    stmt = (
        select(Actor)
        .where(Actor.kind == kind, Actor.id.in_(union(by_name, by_alias)))
        .options(selectinload(Actor.identifiers))
        .order_by(Actor.id)
    )
    if exclude is not None:
        stmt = stmt.where(Actor.id != exclude)
    if kind == "organisation" and country:
        stmt = stmt.where(or_(Actor.country.is_(None), Actor.country == country))
    found = list(session.scalars(stmt))
    given = dict(identifiers)
    return [a for a in found if not any(given.get(i.scheme, i.value) != i.value for i in a.identifiers)]


def actor_brief(actor: Actor) -> dict[str, Any]:
    return {"id": actor.id, "name": actor.name, "kind": actor.kind, "country": actor.country}


def refuse_duplicate(actors: list[Actor], name: str) -> None:
    """409 naming the existing actor(s) a new one would duplicate."""
    if not actors:
        return
    first = actors[0]
    if len(actors) == 1:
        detail = (
            f"actor {first.id} ('{first.name}') is already this {first.kind}; use actor_id {first.id}, "
            'or send "new": true if this really is another one'
        )
    else:
        detail = (
            f"{len(actors)} actors are already named '{name}' ({', '.join(str(a.id) for a in actors)}); "
            'name one with actor_id, or send "new": true'
        )
    raise Conflict(
        detail,
        extra={
            "actor_id": first.id,
            "actor": actor_brief(first),
            "candidates": [actor_brief(a) for a in actors],
        },
    )


# --- aliases ----------------------------------------------------------------------------------


def set_aliases(actor: Actor, names: Iterable[str]) -> None:
    """The actor's aliases become `names` (those equal to its own normalised name, and repeats,
    left out), keeping the rows of the ones that stay; its search text takes them in."""
    own = match_name(actor.name)
    kept = {a.match_name: a for a in actor.aliases}
    out: dict[str, ActorAlias] = {}
    for name in names:
        key = match_name(name)
        if not key or key == own or key in out:
            continue
        out[key] = kept.get(key) or ActorAlias(
            name=name, match_name=key, variant_key=variant_key(name, actor.kind)
        )
    actor.aliases = list(out.values())
    refresh_names(actor)


def refresh_names(actor: Actor) -> None:
    """The actor's derived name forms from its name, sort name and aliases."""
    actor.match_name = match_name(actor.name)
    actor.variant_key = variant_key(actor.name, actor.kind)
    actor.search_text = search_text(actor.name, actor.sort_name, *(a.name for a in actor.aliases))


# --- redirects ------------------------------------------------------------------------------------


def redirect_of(session: Session, actor_id: int) -> int | None:
    """The actor a merged id now is, if it was merged."""
    return session.scalar(select(ActorRedirect.actor_id).where(ActorRedirect.old_id == actor_id))


def missing_actor(session: Session, actor_id: int) -> Exception:
    """The error for an actor id with no actor: a redirect (301) to the actor it was merged
    into, else 404."""
    kept = redirect_of(session, actor_id)
    if kept is not None:
        return Moved(f"actor {actor_id} was merged into actor {kept}", old_id=actor_id, new_id=kept)
    return NotFound(f"no actor with id {actor_id}")


def first_free_actor_id(session: Session) -> int:
    """SQLite: the id a new actor takes, above every actor's and every merged id's (SQLite would
    hand out the id of a deleted last row again, and a merged id must keep redirecting). Safe
    because a SQLite write transaction holds the database's only write lock. (PostgreSQL's
    sequence never hands out an id twice.)"""
    top = session.scalar(select(func.max(Actor.id))) or 0
    merged = session.scalar(select(func.max(ActorRedirect.old_id))) or 0
    return max(top, merged) + 1


def resolve_ids(session: Session, actor_ids: Iterable[int]) -> dict[int, int]:
    """For each id given that was merged (and so names no actor), the actor it now is."""
    wanted = sorted(set(actor_ids))
    out: dict[int, int] = {}
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        stmt = select(ActorRedirect.old_id, ActorRedirect.actor_id).where(ActorRedirect.old_id.in_(part))
        out.update({int(old): int(new) for old, new in session.execute(stmt)})
    return out


# --- merge ------------------------------------------------------------------------------------------


_EVIDENCE = ("capacity", "affiliation", "position", "source")


@dataclass
class MergeResult:
    actor: Actor
    merged: list[int]
    signatures_moved: int
    signatures_folded: int


def _load(session: Session, actor_ids: list[int]) -> dict[int, Actor]:
    stmt = (
        select(Actor)
        .where(Actor.id.in_(actor_ids))
        .options(
            selectinload(Actor.identifiers),
            selectinload(Actor.aliases),
            selectinload(Actor.memberships).selectinload(Membership.body),
            selectinload(Actor.memberships).selectinload(Membership.party),
        )
        .order_by(Actor.id)
        .with_for_update()
    )
    return {a.id: a for a in session.scalars(stmt)}


def _check_merge(session: Session, keep_id: int, others: list[int], force: bool) -> dict[int, Actor]:
    if not others:
        raise Invalid("name at least one actor to merge", field="body.merge")
    if keep_id in others:
        raise Invalid(f"actor {keep_id} cannot be merged into itself", field="body.merge")
    if len(set(others)) != len(others):
        raise Invalid("an actor is named twice", field="body.merge")
    actors = _load(session, [keep_id, *others])
    if keep_id not in actors:
        raise missing_actor(session, keep_id)
    for other in others:
        if other not in actors:
            kept = redirect_of(session, other)
            detail = (
                f"actor {other} was merged into actor {kept} already" if kept else f"no actor with id {other}"
            )
            raise Invalid(detail, field="body.merge")
    keep = actors[keep_id]
    for other in others:
        if actors[other].kind != keep.kind:
            raise Conflict(
                f"actor {other} is a {actors[other].kind} and actor {keep_id} a {keep.kind}: they cannot be one",
                extra={"actor_id": other},
            )
    if not force:
        held: dict[str, tuple[str, int]] = {}
        for actor in actors.values():
            for ident in actor.identifiers:
                seen = held.setdefault(ident.scheme, (ident.value, actor.id))
                if seen[0] != ident.value and ident.scheme != "website":
                    raise Conflict(
                        f"actors {seen[1]} and {actor.id} hold different {ident.scheme} identifiers "
                        f"({seen[0]}, {ident.value}): they look like two actors; "
                        'send "force": true to merge them all the same',
                        extra={"actor_ids": [seen[1], actor.id], "scheme": ident.scheme},
                    )
    return actors


def merge_actors(writer: Writer, keep_id: int, others: list[int], *, force: bool = False) -> MergeResult:
    """Fold `others` into `keep_id` in the caller's transaction (SPEC §6): signatures (a letter
    signed by several keeps one signature: the earliest, with the others' evidence where its own
    is empty; withdrawn only if every one was), memberships (identical seats kept once),
    identifiers, recipients (one per letter and role), names as aliases; the merged ids redirect
    to the kept actor. The rollups and letter versions follow (`rollups.rewriting`)."""
    session = writer.session
    actors = _check_merge(session, keep_id, others, force)
    keep = actors[keep_id]
    ids = [keep_id, *others]
    before = {
        "kept": _full_snapshot(keep),
        "merged": [_full_snapshot(actors[o]) for o in others],
    }
    folded: list[dict[str, Any]] = []
    seated = any(actors[i].memberships for i in others)
    with rollups.rewriting(session, Signature.actor_id.in_(ids)):
        folded = _fold_signatures(session, keep_id, ids)
        moved = _count(
            session.execute(update(Signature).where(Signature.actor_id.in_(others)).values(actor_id=keep_id))
        )
        _move_memberships(session, keep_id, others)
        _move_recipients(session, keep_id, others)
        session.execute(update(Identifier).where(Identifier.actor_id.in_(others)).values(actor_id=keep_id))
        session.execute(
            update(ActorRedirect).where(ActorRedirect.actor_id.in_(others)).values(actor_id=keep_id)
        )
        for field in ("sort_name", "country", "org_type"):
            if getattr(keep, field) is None:
                setattr(
                    keep,
                    field,
                    next((getattr(actors[o], field) for o in others if getattr(actors[o], field)), None),
                )
        names = [a.name for a in keep.aliases]
        for o in others:
            names += [actors[o].name, *(a.name for a in actors[o].aliases)]
        session.flush()
        for o in others:
            session.expunge(actors[o])
        session.execute(delete(ActorAlias).where(ActorAlias.actor_id.in_(others)))
        session.execute(
            delete(DistinctActors).where(
                or_(DistinctActors.actor_a.in_(others), DistinctActors.actor_b.in_(others))
            )
        )
        session.execute(delete(Actor).where(Actor.id.in_(others)))
        session.add_all(ActorRedirect(old_id=o, actor_id=keep_id) for o in others)
        session.expire(keep, ["identifiers", "memberships", "aliases"])
        keep = _load(session, [keep_id])[keep_id]
        set_aliases(keep, names)
        keep.updated_at = utcnow()
        session.flush()
    if seated:
        rollups.touch_all(session)
    record_change(
        session,
        writer.key_name,
        "merge",
        "actor",
        keep_id,
        before={**before, "folded_signatures": folded},
        after={**_full_snapshot(keep), "merged_ids": others},
    )
    return MergeResult(keep, others, moved + len(folded), len(folded))


def _count(result: Any) -> int:
    """Rows an UPDATE or DELETE touched."""
    return int(getattr(result, "rowcount", 0) or 0)


def _full_snapshot(actor: Actor) -> dict[str, Any]:
    data = snapshot(actor)
    data.pop("variant_key", None)
    data["identifiers"] = [f"{i.scheme}:{i.value}" for i in actor.identifiers]
    data["aliases"] = [a.name for a in actor.aliases]
    data["memberships"] = [snapshot(m) for m in actor.memberships]
    return data


def _fold_signatures(session: Session, keep_id: int, ids: list[int]) -> list[dict[str, Any]]:
    """Letters signed by more than one of `ids`: keep the earliest signature (ties: the lowest
    id), fill its empty evidence from the others, withdrawn only when all were (on the latest
    day), and delete the others. Returns the deleted ones as they were."""
    shared = (
        select(Signature.letter_id)
        .where(Signature.actor_id.in_(ids))
        .group_by(Signature.letter_id)
        .having(func.count() > 1)
    )
    rows = list(
        session.scalars(
            select(Signature)
            .where(Signature.actor_id.in_(ids), Signature.letter_id.in_(shared))
            .order_by(Signature.letter_id, Signature.signed_on, Signature.id)
        )
    )
    by_letter: dict[int, list[Signature]] = defaultdict(list)
    for row in rows:
        by_letter[row.letter_id].append(row)
    gone: list[dict[str, Any]] = []
    for group in by_letter.values():
        first, rest = group[0], group[1:]
        for other in rest:
            for field in _EVIDENCE:
                if getattr(first, field) is None and getattr(other, field) is not None:
                    setattr(first, field, getattr(other, field))
            if other.status == "confirmed":
                first.status = "confirmed"
            gone.append(snapshot(other))
        withdrawn = [s.withdrawn_on for s in group]
        first.withdrawn_on = None if None in withdrawn else max(w for w in withdrawn if w is not None)
        for other in rest:
            session.delete(other)
        session.flush()
        first.actor_id = keep_id
    session.flush()
    return gone


def _move_memberships(session: Session, keep_id: int, others: list[int]) -> None:
    session.execute(update(Membership).where(Membership.actor_id.in_(others)).values(actor_id=keep_id))
    rows = session.execute(
        select(
            Membership.id, Membership.body_id, Membership.party_id, Membership.start_date, Membership.end_date
        )
        .where(Membership.actor_id == keep_id)
        .order_by(Membership.id)
    ).all()
    seen: set[tuple[Any, ...]] = set()
    twice = []
    for row in rows:
        seat = tuple(row[1:])
        if seat in seen:
            twice.append(row[0])
        seen.add(seat)
    if twice:
        session.execute(delete(Membership).where(Membership.id.in_(twice)))


def _move_recipients(session: Session, keep_id: int, others: list[int]) -> None:
    mine = aliased(Recipient)
    clash = select(Recipient.id).where(
        Recipient.actor_id.in_(others),
        select(mine.id)
        .where(mine.actor_id == keep_id, mine.letter_id == Recipient.letter_id, mine.role == Recipient.role)
        .exists(),
    )
    session.execute(delete(Recipient).where(Recipient.id.in_(list(session.scalars(clash)))))
    # Two of the merged actors may share a letter and role too: keep the first.
    rows = session.execute(
        select(Recipient.id, Recipient.letter_id, Recipient.role)
        .where(Recipient.actor_id.in_(others))
        .order_by(Recipient.id)
    ).all()
    seen: set[tuple[int, str]] = set()
    twice = []
    for rid, letter_id, role in rows:
        if (letter_id, role) in seen:
            twice.append(rid)
        seen.add((letter_id, role))
    if twice:
        session.execute(delete(Recipient).where(Recipient.id.in_(twice)))
    session.execute(update(Recipient).where(Recipient.actor_id.in_(others)).values(actor_id=keep_id))


# --- the review queue -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PossibleDuplicate:
    a: int
    b: int
    score: float
    evidence: list[str]


def _normalised_identifier() -> Any:
    value = func.lower(Identifier.value)
    for prefix in ("https://", "http://", "www."):
        value = func.replace(value, prefix, "")
    return func.rtrim(value, "/")


def possible_duplicates(session: Session, *, kind: str | None, threshold: float) -> list[PossibleDuplicate]:
    """Pairs of actors that are probably one, best first: equal identifiers once written alike
    (`https://www.amnesty.org/` and `amnesty.org`), the same normalised name or variant key, or
    fuzzy names at or above `threshold` with nothing that tells them apart — for organisations
    with no different country. Pairs decided distinct are left out."""
    pairs: dict[tuple[int, int], PossibleDuplicate] = {}

    def add(a: int, b: int, score: float, why: str) -> None:
        a, b = min(a, b), max(a, b)
        found = pairs.get((a, b))
        if found is None:
            pairs[(a, b)] = PossibleDuplicate(a, b, score, [why])
        else:
            pairs[(a, b)] = PossibleDuplicate(a, b, max(score, found.score), [*found.evidence, why])

    # The identifiers that more than one actor holds once written alike, grouped: a self-join on
    # the written-alike form cannot use an index, and SQLite compared every two identifiers
    # (tens of seconds for the demo's 2,908).
    norm = _normalised_identifier().label("norm")
    idents = select(Identifier.actor_id, Identifier.scheme, norm).subquery()
    shared = (
        select(idents.c.scheme, idents.c.norm, func.group_concat(idents.c.actor_id.distinct()))
        .group_by(idents.c.scheme, idents.c.norm)
        .having(func.count(idents.c.actor_id.distinct()) > 1)
    )
    if session.get_bind().dialect.name == "postgresql":
        shared = shared.with_only_columns(
            idents.c.scheme, idents.c.norm, func.string_agg(cast(idents.c.actor_id, Text).distinct(), ",")
        )
    for scheme, value, holders in session.execute(shared):
        ids = sorted(int(held) for held in holders.split(","))
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                add(a, b, 1.0, f"identifier {scheme}: {value}")

    left, right = aliased(Actor), aliased(Actor)
    compatible = or_(
        left.kind == "person", left.country.is_(None), right.country.is_(None), left.country == right.country
    )
    for column, label in (
        (Actor.match_name, "the same name"),
        (Actor.variant_key, "the same name once short forms are expanded"),
    ):
        la, ra = getattr(left, column.key), getattr(right, column.key)
        stmt = (
            select(left.id, right.id, la)
            .join(right, (ra == la) & (right.kind == left.kind) & (right.id > left.id))
            .where(la != "", compatible)
        )
        if kind:
            stmt = stmt.where(left.kind == kind)
        for a, b, value in session.execute(stmt):
            add(a, b, 1.0 if column is Actor.match_name else 0.0, f"{label}: '{value}'")
    alias_rows = select(ActorAlias.actor_id, ActorAlias.match_name).subquery()
    stmt = select(alias_rows.c.actor_id, Actor.id, alias_rows.c.match_name).join(
        Actor, (Actor.match_name == alias_rows.c.match_name) & (Actor.id != alias_rows.c.actor_id)
    )
    for a, b, value in session.execute(stmt):
        add(a, b, 1.0, f"an alias of one is the other's name: '{value}'")

    _fuzzy_pairs(session, kind, threshold, add)
    decided = {
        (int(a), int(b)) for a, b in session.execute(select(DistinctActors.actor_a, DistinctActors.actor_b))
    }
    _score_variants(session, pairs)
    out = [p for key, p in pairs.items() if key not in decided]
    return sorted(out, key=lambda p: (-p.score, p.a, p.b))


def _score_variants(session: Session, pairs: dict[tuple[int, int], PossibleDuplicate]) -> None:
    """Pairs known only by their variant keys get the fuzzy score of their names."""
    unscored = [key for key, p in pairs.items() if p.score == 0.0]
    if not unscored:
        return
    ids = {i for key in unscored for i in key}
    names = {
        int(i): str(n)
        for i, n in session.execute(select(Actor.id, Actor.match_name).where(Actor.id.in_(ids)))
    }
    for a, b in unscored:
        p = pairs[(a, b)]
        score = round(fuzz.token_sort_ratio(names.get(a, ""), names.get(b, "")) / 100, 4)
        pairs[(a, b)] = PossibleDuplicate(a, b, score, p.evidence)


BLOCK = 50  # a word shared by more actors than this blocks nothing for the fuzzy pass


def _fuzzy_pairs(session: Session, kind: str | None, threshold: float, add: Any) -> None:
    """Names that score at least `threshold` (token_sort_ratio) against another of the same
    kind sharing a rare word with it, with no distinguishing word between them and, for
    organisations, no different country."""
    stmt = select(Actor.id, Actor.kind, Actor.country, Actor.match_name, Actor.name)
    if kind:
        stmt = stmt.where(Actor.kind == kind)
    rows = session.execute(stmt.order_by(Actor.id)).all()
    postings: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        for word in set(row.match_name.split(" ")):
            if len(word) > 2:
                postings[(row.kind, word)].append(index)
    seen: set[tuple[int, int]] = set()
    for (actor_kind, _word), members in postings.items():
        if len(members) < 2 or len(members) > BLOCK:
            continue
        for i, x in enumerate(members):
            for y in members[i + 1 :]:
                a, b = rows[x], rows[y]
                if (a.id, b.id) in seen or a.match_name == b.match_name:
                    continue
                seen.add((a.id, b.id))
                if actor_kind == "organisation" and a.country and b.country and a.country != b.country:
                    continue
                score = fuzz.token_sort_ratio(a.match_name, b.match_name)
                if score < threshold or differ_by_distinguishing(a.name, b.name, actor_kind):
                    continue
                add(a.id, b.id, round(score / 100, 4), f"names score {score / 100:.2f} (token_sort_ratio)")


def decide_distinct(writer: Writer, a: int, b: int) -> None:
    """Record that two actors are not one: their pair leaves the review queue for good."""
    session = writer.session
    low, high = min(a, b), max(a, b)
    for actor_id in (low, high):
        if session.get(Actor, actor_id) is None:
            raise missing_actor(session, actor_id)
    exists = session.get(DistinctActors, (low, high))
    if exists is None:
        session.add(DistinctActors(actor_a=low, actor_b=high, decided_by=writer.key_name))
        session.flush()
    record_change(
        session, writer.key_name, "create", "distinct_actors", f"{low}/{high}", after={"actors": [low, high]}
    )
