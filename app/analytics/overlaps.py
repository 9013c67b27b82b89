"""Overlaps between letters (sizes, pairs, exact UpSet intersections), the actors in an
overlap, and an actor's co-signatories. Only signatures that still count (not withdrawn) are
considered: overlaps are about now."""

from __future__ import annotations

from itertools import combinations
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Integer,
    any_,
    bindparam,
    case,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.dialects import postgresql
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

    slugs = [letter.slug for letter in letters]
    pair_list = []
    for (i, j), both in common.items():
        union = sizes[i] + sizes[j] - both
        pair_list.append(Pair(a=slugs[i], b=slugs[j], common=both, jaccard=both / union if union else 0.0))
    return Overlaps(
        letters=slugs,
        sizes={slug: sizes[i] for i, slug in enumerate(slugs)},
        union=sum(n for _, n in groups),
        pairs=pair_list,
        # Built without validation (slugs and counts, typed already): 50 letters can make
        # a hundred thousand distinct sets, and validating each was most of the read's time.
        intersections=[
            Intersection.model_construct(letters=[slugs[i] for i in members], count=n)
            for members, n in groups
        ],
    )


def _groups(session: Session, ids: list[int]) -> list[tuple[list[int], int]]:
    """The exact intersections, as (positions of the letters, actors who signed exactly those).

    One statement: each actor's set of the given letters as a bitmask (one bit per letter, by
    its position; 50 letters fit a BIGINT), grouped by actor, then the actors counted per
    mask — so only the distinct sets come back, with their counts. The bit is computed from
    the letter id of each signature row, with no join: on PostgreSQL from the id's position in
    an array parameter (`letter_id = ANY(:ids)`), on SQLite from a CASE over the ids."""
    if is_sqlite(session):
        bit: Any = case({letter_id: 1 << i for i, letter_id in enumerate(ids)}, value=Signature.letter_id)
        chosen: Any = Signature.letter_id.in_(ids)
        mask: Any = func.sum(bit)  # (distinct powers of two: the sum is the OR)
    else:
        listed = bindparam("ids", ids, type_=postgresql.ARRAY(Integer))
        position = func.array_position(listed, Signature.letter_id)
        bit = literal(1, BigInteger).op("<<", return_type=BigInteger)(position - 1)
        chosen = Signature.letter_id == any_(listed)
        mask = func.bit_or(bit, type_=BigInteger)
        _roomy_aggregate(session)
    masks = select(mask.label("mask")).where(chosen, _counts).group_by(Signature.actor_id).subquery("masks")
    mask_rows = session.execute(select(masks.c.mask, func.count()).group_by(masks.c.mask)).all()
    return [(_positions(int(mask)), int(n)) for mask, n in mask_rows]


def _positions(mask: int) -> list[int]:
    """The positions of the bits set in `mask`, lowest first (one step per set bit, not per
    letter)."""
    found = []
    while mask:
        low = mask & -mask
        found.append(low.bit_length() - 1)
        mask ^= low
    return found


def _roomy_aggregate(session: Session) -> None:
    """For the rest of the read's transaction (PostgreSQL): memory enough to group the
    signatures of 50 large letters by actor in one hash table, in memory (the default spills it
    to disk in batches), and no JIT compilation of the grouping (it costs more than it saves
    on a statement that is planned anew for every read)."""
    for name, value in _AGGREGATE_SETTINGS.items():
        session.execute(text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value})


_AGGREGATE_SETTINGS = {"work_mem": "64MB", "jit": "off"}


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
