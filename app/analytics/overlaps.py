"""Overlaps between letters (sizes, pairs, exact UpSet intersections), the actors in an
overlap, and an actor's co-signatories. Only signatures that still count (not withdrawn) are
considered: overlaps are about now."""

from __future__ import annotations

from itertools import combinations
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Integer,
    case,
    cast,
    column,
    func,
    literal,
    select,
    union_all,
    values,
)
from sqlalchemy.orm import Session, aliased

from app import pairs
from app.actors.identity import missing_actor
from app.analytics.common import campaign_letters, get_campaign
from app.analytics.results import Intersection, Overlaps, Pair
from app.db.engine import is_sqlite
from app.errors import Invalid, NotFound
from app.models import ACTOR_LOADS, Actor, Letter, Signature
from app.pagination import PageParams, SortKey, keyset_page

Match = Literal["all", "any", "only"]
MIN_LETTERS, MAX_LETTERS = 2, 50

_counts = pairs.counting()


def wanted_slugs(slugs: str | None, campaign: str | None) -> list[str] | None:
    """The slugs of `?letters=a,b,c` (comma-separated, duplicates dropped, order kept), or None
    for `?campaign=slug`; 422 when both are given or the count is not 2 to 50. Checked before
    anything is read."""
    if slugs is not None and campaign is not None:
        raise Invalid("give either letters or campaign, not both", field="query.campaign")
    if campaign is not None:
        return None
    wanted = list(dict.fromkeys(s.strip() for s in (slugs or "").split(",") if s.strip()))
    if not MIN_LETTERS <= len(wanted) <= MAX_LETTERS:
        raise Invalid(
            f"give {MIN_LETTERS} to {MAX_LETTERS} distinct letter slugs, comma-separated (got {len(wanted)})",
            field="query.letters",
        )
    return wanted


def resolve_letters(session: Session, slugs: str | None, campaign: str | None) -> list[Letter]:
    """The letters of `?letters=a,b,c` (`wanted_slugs`) or of `?campaign=slug`: between 2 and
    50 of them, else 422; an unknown slug is a 404."""
    wanted = wanted_slugs(slugs, campaign)
    if wanted is None:
        assert campaign is not None
        letters = campaign_letters(session, get_campaign(session, campaign))
        if not MIN_LETTERS <= len(letters) <= MAX_LETTERS:
            raise Invalid(
                f"the campaign has {len(letters)} letters; overlaps need {MIN_LETTERS} to {MAX_LETTERS}",
                field="query.campaign",
            )
        return letters
    found = {letter.slug: letter for letter in session.scalars(select(Letter).where(Letter.slug.in_(wanted)))}
    missing = [s for s in wanted if s not in found]
    if missing:
        raise NotFound(f"no letter with slug {', '.join(repr(s) for s in missing)}")
    return [found[s] for s in wanted]


def overlaps(session: Session, letters: list[Letter]) -> Overlaps:
    """Sizes, the union, every pair (in the order given) and the exact intersections.

    Sizes and pairs come from the maintained counts (`app.pairs.matrix`: the letters' rollups
    and their pair rows, one statement, no signature read). Two letters' intersections follow
    from those three numbers. For three letters or more the exact intersections need each
    actor's set of the letters: `_groups` computes them in SQL over the signatures."""
    ids = [letter.id for letter in letters]
    size_of, shared = pairs.matrix(session, ids)
    sizes = [size_of[i] for i in ids]
    common = {
        (i, j): shared.get(pairs.common_key(ids[i], ids[j]), 0) for i, j in combinations(range(len(ids)), 2)
    }
    if len(ids) == 2:
        both = common[(0, 1)]
        counted = [([0], sizes[0] - both), ([1], sizes[1] - both), ([0, 1], both)]
        groups = [(members, n) for members, n in counted if n > 0]
    else:
        groups = _groups(session, ids)
    groups.sort(key=lambda g: (-g[1], g[0]))

    pair_list = []
    for (i, j), both in common.items():
        union = sizes[i] + sizes[j] - both
        pair_list.append(
            Pair(a=letters[i].slug, b=letters[j].slug, common=both, jaccard=both / union if union else 0.0)
        )
    return Overlaps(
        letters=[letter.slug for letter in letters],
        sizes={letter.slug: sizes[i] for i, letter in enumerate(letters)},
        union=sum(n for _, n in groups),
        pairs=pair_list,
        intersections=[
            Intersection(letters=[letters[i].slug for i in members], count=n) for members, n in groups
        ],
    )


def _groups(session: Session, ids: list[int]) -> list[tuple[list[int], int]]:
    """The exact intersections, as (positions of the letters, actors who signed exactly those).

    One GROUP BY in SQL: each actor's set of the given letters as a bitmask (the sum of one
    power of two per letter, joined from a small table of the letters' bits; 50 letters fit a
    BIGINT), then the actors per mask — so only the distinct sets come back, with their counts.
    (A CASE over 50 letter ids per signature made PostgreSQL's plan far slower than the join.)"""
    rows = [(letter_id, 1 << i) for i, letter_id in enumerate(ids)]
    bits: Any
    if is_sqlite(session):  # (no column names on a VALUES list there)
        bits = union_all(
            *(select(literal(a).label("letter_id"), literal(b, BigInteger).label("bit")) for a, b in rows)
        ).subquery("bits")
    else:  # a VALUES list of integers, written in: PostgreSQL hash-joins the signatures with it
        columns = (column("letter_id", Integer), column("bit", BigInteger))
        bits = values(*columns, name="bits", literal_binds=True).data(rows)
    masks = (
        select(Signature.actor_id, cast(func.sum(bits.c.bit), BigInteger).label("mask"))
        .join(bits, bits.c.letter_id == Signature.letter_id)
        .where(_counts)
        .group_by(Signature.actor_id)
        .subquery("masks")
    )
    mask_rows = session.execute(select(masks.c.mask, func.count()).group_by(masks.c.mask)).all()
    return [([i for i in range(len(ids)) if int(mask) >> i & 1], int(n)) for mask, n in mask_rows]


def overlap_signatories(
    session: Session, letters: list[Letter], match: Match, params: PageParams
) -> tuple[list[Actor], str | None]:
    """A page (by actor id) of the actors who signed every listed letter (`all`), at least one
    (`any`), or the first listed and none of the others (`only`)."""
    ids = [letter.id for letter in letters]
    first = ids[0]
    per_actor = select(Signature.actor_id).where(Signature.letter_id.in_(ids), _counts)
    if match == "all":
        wanted: Any = per_actor.group_by(Signature.actor_id).having(
            func.count(func.distinct(Signature.letter_id)) == len(ids)
        )
    elif match == "any":
        wanted = per_actor
    else:
        wanted = per_actor.group_by(Signature.actor_id).having(
            func.max(case((Signature.letter_id == first, 0), else_=1)) == 0
        )
    stmt = select(Actor).where(Actor.id.in_(wanted)).options(*ACTOR_LOADS)
    rows, cursor = keyset_page(session, stmt, [SortKey(Actor.id)], params)
    return [row[0] for row in rows], cursor


def co_signatories(
    session: Session, actor_id: int, params: PageParams
) -> tuple[list[tuple[Actor, int]], str | None]:
    """A page of the actors who signed the same letters as `actor_id` (both signatures still
    counting), by the number of letters shared, descending, then actor id."""
    if session.get(Actor, actor_id) is None:
        raise missing_actor(session, actor_id)
    mine, theirs = aliased(Signature), aliased(Signature)
    shared = (
        select(theirs.actor_id.label("actor_id"), func.count().label("shared"))
        .select_from(mine)
        .join(theirs, theirs.letter_id == mine.letter_id)
        .where(
            mine.actor_id == actor_id,
            mine.withdrawn_on.is_(None),
            theirs.withdrawn_on.is_(None),
            theirs.actor_id != actor_id,
        )
        .group_by(theirs.actor_id)
        .subquery("shared")
    )
    stmt = select(Actor).join(shared, shared.c.actor_id == Actor.id).options(*ACTOR_LOADS)
    keys = [SortKey(shared.c.shared, descending=True), SortKey(Actor.id)]
    rows, cursor = keyset_page(session, stmt, keys, params)
    return [(row[0], int(row[1])) for row in rows], cursor
