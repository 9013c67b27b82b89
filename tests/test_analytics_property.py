"""Property test: on random small registries, every analytic's HTTP answer equals a plain-Python
model of the SPEC rules written here, independently of the SQL.

Each example writes its registry through the ORM builders and commits it (the app reads it
through the production `Database`); what it wrote is deleted before the next example
(`end_example`), so examples never see each other's rows."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from app import rollups
from app.pairs import recomputed as recomputed_pairs
from app.pairs import snapshot as kept_pairs
from tests import builders as b
from tests.conftest import end_example

BASE = date(2020, 12, 14)  # a Monday: offsets span December, the year end, January, February
COUNTRY = {"GB": "United Kingdom", "FR": "France", "DE": "Germany"}
KIND = {"person": "Person", "organisation": "Organisation"}
ORG_TYPE = {"ngo": "NGO", "union": "Union", "faith": "Faith"}
BODIES = [("commons", "House of Commons"), ("lords", "House of Lords")]
PARTIES = [("labour", "Labour"), ("conservative", "Conservative"), ("green", "Green")]


def day(offset: int) -> date:
    return BASE + timedelta(days=offset)


# --- the registry, as plain data ------------------------------------------------------------


@dataclass
class MembershipSpec:
    actor: int
    body: int
    party: int | None
    start: date
    end: date | None


@dataclass
class ActorSpec:
    kind: str
    country: str | None
    org_type: str | None


@dataclass
class LetterSpec:
    slug: str
    published_on: date | None
    in_campaign: bool


@dataclass
class SignatureSpec:
    letter: int
    actor: int
    signed_on: date
    withdrawn_on: date | None


@dataclass
class Registry:
    actors: list[ActorSpec]
    memberships: list[MembershipSpec]
    letters: list[LetterSpec]
    signatures: list[SignatureSpec]
    events: list[tuple[int, date]]
    as_of: date | None
    interval: str
    order: list[int]
    ids: dict[str, Any] = field(default_factory=dict)
    gone: set[int] = field(default_factory=set)  # actors merged into another


# Corrections of identity: ("merge", keep, other), ("move", signature, actor), ("retract", signature).
Correction = tuple[str, int, int]


@st.composite
def registries(draw: st.DrawFn) -> Registry:
    n_actors = draw(st.integers(1, 7))
    actors = []
    for _ in range(n_actors):
        kind = draw(st.sampled_from(["person", "organisation"]))
        country = draw(st.sampled_from([None, "GB", "FR", "DE"]))
        org_type = draw(st.sampled_from([None, "ngo", "union", "faith"])) if kind == "organisation" else None
        actors.append(ActorSpec(kind, country, org_type))
    memberships = []
    for i, a in enumerate(actors):
        if a.kind != "person":
            continue
        for _ in range(draw(st.integers(0, 3))):
            start = draw(st.integers(-10, 60))
            length = draw(st.one_of(st.none(), st.integers(0, 30)))
            memberships.append(
                MembershipSpec(
                    actor=i,
                    body=draw(st.integers(0, len(BODIES) - 1)),
                    party=draw(st.one_of(st.none(), st.integers(0, len(PARTIES) - 1))),
                    start=day(start),
                    end=None if length is None else day(start + length),
                )
            )
    n_letters = draw(st.integers(2, 4))
    letters = [
        LetterSpec(
            slug=f"p-{i}",
            published_on=draw(st.one_of(st.none(), st.integers(0, 40).map(day))),
            in_campaign=draw(st.booleans()),
        )
        for i in range(n_letters)
    ]
    signatures = []
    for li in range(n_letters):
        for ai in range(n_actors):
            if not draw(st.booleans()):
                continue
            signed = draw(st.integers(0, 70))
            after = draw(st.one_of(st.none(), st.integers(0, 20)))
            signatures.append(
                SignatureSpec(li, ai, day(signed), None if after is None else day(signed + after))
            )
    events = [
        (li, day(draw(st.integers(-5, 90))))
        for li in range(n_letters)
        for _ in range(draw(st.integers(0, 2)))
    ]
    return Registry(
        actors=actors,
        memberships=memberships,
        letters=letters,
        signatures=signatures,
        events=events,
        as_of=draw(st.one_of(st.none(), st.integers(-2, 95).map(day))),
        interval=draw(st.sampled_from(["day", "week", "month"])),
        order=draw(st.permutations(list(range(n_letters)))),
    )


def write(db: Session, reg: Registry) -> None:
    bodies = [b.body(db, slug, name) for slug, name in BODIES]
    parties = [b.party(db, slug, name) for slug, name in PARTIES]
    camp = b.campaign(db, "prop-camp")
    actors = [
        b.actor(db, f"Actor {i}", kind=a.kind, country=a.country, org_type=a.org_type)
        for i, a in enumerate(reg.actors)
    ]
    membership_ids = []
    for m in reg.memberships:
        row = b.membership(
            db, actors[m.actor], bodies[m.body], None if m.party is None else parties[m.party], m.start, m.end
        )
        membership_ids.append(row.id)
    letters = [
        b.letter(db, spec.slug, published_on=spec.published_on, campaign=camp if spec.in_campaign else None)
        for spec in reg.letters
    ]
    for s in reg.signatures:
        b.sign(db, letters[s.letter], actors[s.actor], s.signed_on, withdrawn_on=s.withdrawn_on)
    for li, when in reg.events:
        b.event(db, when, "other", on=letters[li], note=f"event {when}")
    reg.ids = {"actors": [a.id for a in actors], "memberships": membership_ids}


# --- the model ------------------------------------------------------------------------------


def valid(m: MembershipSpec, on: date) -> bool:
    return m.start <= on and (m.end is None or m.end >= on)


def seat(reg: Registry, actor: int, on: date) -> MembershipSpec | None:
    """The membership valid that day; of several, the latest start, then the first made."""
    found = [(i, m) for i, m in enumerate(reg.memberships) if m.actor == actor and valid(m, on)]
    if not found:
        return None
    found.sort(key=lambda im: (-im[1].start.toordinal(), reg.ids["memberships"][im[0]]))
    return found[0][1]


def entries(tally: Counter[str | None], label: Any) -> list[dict[str, Any]]:
    rows = [
        {"key": k, "label": "Unknown" if k is None else label(k), "count": n} for k, n in tally.items() if n
    ]
    return sorted(rows, key=lambda e: (-e["count"], e["key"] is None, e["key"] or ""))


def model_breakdowns(reg: Registry, rows: list[tuple[int, date]]) -> dict[str, list[dict[str, Any]]]:
    """Breakdowns of (actor, day) rows: each row once, body and party from the seat that day."""
    tallies: dict[str, Counter[str | None]] = defaultdict(Counter)
    for actor, on in rows:
        a = reg.actors[actor]
        m = seat(reg, actor, on)
        tallies["kind"][a.kind] += 1
        tallies["country"][a.country] += 1
        tallies["org_type"][a.org_type] += 1
        tallies["body"][None if m is None else BODIES[m.body][0]] += 1
        tallies["party"][None if m is None or m.party is None else PARTIES[m.party][0]] += 1
    bodies, parties = dict(BODIES), dict(PARTIES)
    return {
        "by_kind": entries(tallies["kind"], KIND.__getitem__),
        "by_body": entries(tallies["body"], bodies.__getitem__),
        "by_party": entries(tallies["party"], parties.__getitem__),
        "by_country": entries(tallies["country"], COUNTRY.__getitem__),
        "by_org_type": entries(tallies["org_type"], ORG_TYPE.__getitem__),
    }


def model_counts(reg: Registry, li: int) -> dict[str, Any]:
    on = reg.as_of or date.today()
    sigs = [s for s in reg.signatures if s.letter == li and s.signed_on <= on]
    recorded = [s for s in sigs if s.withdrawn_on is None or s.withdrawn_on > on]
    out = model_breakdowns(reg, [(s.actor, s.signed_on) for s in recorded])
    seats_day = reg.letters[li].published_on or on
    for e in out["by_body"]:
        # (the people whose seat that day, as `seat` picks it, is in the body)
        seats = sum(
            1
            for actor in range(len(reg.actors))
            if e["key"] and (m := seat(reg, actor, seats_day)) is not None and BODIES[m.body][0] == e["key"]
        )
        e["share_of_body"] = e["count"] / seats if seats else None
    return {
        "letter": reg.letters[li].slug,
        "as_of": None if reg.as_of is None else reg.as_of.isoformat(),
        "claimed": None,
        "recorded": len(recorded),
        "withdrawn": len(sigs) - len(recorded),
        **out,
    }


def counting(reg: Registry, li: int) -> set[int]:
    return {s.actor for s in reg.signatures if s.letter == li and s.withdrawn_on is None}


def model_overlaps(reg: Registry) -> dict[str, Any]:
    order = reg.order
    sets = [counting(reg, li) for li in order]
    slugs = [reg.letters[li].slug for li in order]
    pairs = []
    for i in range(len(order)):
        for j in range(i + 1, len(order)):
            common, union = len(sets[i] & sets[j]), len(sets[i] | sets[j])
            pairs.append(
                {"a": slugs[i], "b": slugs[j], "common": common, "jaccard": common / union if union else 0.0}
            )
    exact: Counter[tuple[int, ...]] = Counter()
    for actor in set().union(*sets):
        exact[tuple(i for i, s in enumerate(sets) if actor in s)] += 1
    groups = sorted(exact.items(), key=lambda g: (-g[1], g[0]))
    return {
        "letters": slugs,
        "sizes": {slug: len(s) for slug, s in zip(slugs, sets, strict=True)},
        "union": len(set().union(*sets)),
        "pairs": pairs,
        "intersections": [{"letters": [slugs[i] for i in key], "count": n} for key, n in groups],
    }


def model_signatories(reg: Registry, match: str) -> list[int]:
    sets = [counting(reg, li) for li in reg.order]
    if match == "all":
        chosen = set.intersection(*sets)
    elif match == "any":
        chosen = set().union(*sets)
    else:
        chosen = sets[0] - set().union(*sets[1:])
    return sorted(reg.ids["actors"][a] for a in chosen)


def bucket(d: date, interval: str) -> date:
    if interval == "week":
        return date.fromisocalendar(*d.isocalendar()[:2], 1)
    if interval == "month":
        return date(d.year, d.month, 1)
    return d


def buckets_between(first: date, last: date, interval: str) -> list[date]:
    out: list[date] = []
    d = first
    while d <= last:
        if not out or bucket(d, interval) != out[-1]:
            out.append(bucket(d, interval))
        d += timedelta(days=1)
    return out


def model_points(reg: Registry, li: int) -> list[dict[str, Any]]:
    iv = reg.interval
    sigs = [s for s in reg.signatures if s.letter == li]
    new = Counter(bucket(s.signed_on, iv) for s in sigs)
    gone = Counter(bucket(s.withdrawn_on, iv) for s in sigs if s.withdrawn_on)
    evs = [bucket(d, iv) for l_, d in reg.events if l_ == li]
    if not (new or gone or evs):
        return []
    first = min(new) if new else min([*gone, *evs])
    last = max([*new, *gone, *evs])
    points, total = [], 0
    for d in buckets_between(first, last, iv):
        total += new[d] - gone[d]
        points.append({"date": d.isoformat(), "new": new[d], "withdrawn": gone[d], "cumulative": total})
    return points


def campaign_rows(reg: Registry) -> dict[int, list[date]]:
    """actor -> the days of its campaign signatures that still count."""
    out: dict[int, list[date]] = defaultdict(list)
    for s in reg.signatures:
        if reg.letters[s.letter].in_campaign and s.withdrawn_on is None:
            out[s.actor].append(s.signed_on)
    return out


def model_distinct(reg: Registry) -> list[dict[str, Any]]:
    firsts = Counter(bucket(min(days), reg.interval) for days in campaign_rows(reg).values())
    if not firsts:
        return []
    points, total = [], 0
    for d in buckets_between(min(firsts), max(firsts), reg.interval):
        total += firsts[d]
        points.append({"date": d.isoformat(), "new": firsts[d], "cumulative": total})
    return points


def model_reach(reg: Registry) -> dict[str, Any]:
    rows = campaign_rows(reg)
    out = model_breakdowns(reg, [(a, max(days)) for a, days in rows.items()])
    dated = [spec.published_on for spec in reg.letters if spec.in_campaign and spec.published_on]
    seats_day = max(dated, default=date.today())  # (the campaign's newest letter's date)
    for e in out["by_body"]:
        seats = sum(
            1
            for actor in range(len(reg.actors))
            if e["key"] and (m := seat(reg, actor, seats_day)) is not None and BODIES[m.body][0] == e["key"]
        )
        e["share_of_body"] = e["count"] / seats if seats else None
    return {
        "campaign": "prop-camp",
        "letters": sum(spec.in_campaign for spec in reg.letters),
        "distinct": len(rows),
        "signed_more_than_one": sum(len(days) > 1 for days in rows.values()),
        "seats_on": seats_day.isoformat(),
        **out,
    }


def model_co_signatories(reg: Registry, actor: int) -> list[tuple[int, int]]:
    mine = {s.letter for s in reg.signatures if s.actor == actor and s.withdrawn_on is None}
    shared: Counter[int] = Counter(
        s.actor for s in reg.signatures if s.letter in mine and s.withdrawn_on is None and s.actor != actor
    )
    ids = reg.ids["actors"]
    return sorted(((ids[a], n) for a, n in shared.items()), key=lambda t: (-t[1], t[0]))


# --- the property ---------------------------------------------------------------------------


def pages(client: TestClient, url: str, params: dict[str, Any]) -> list[Any]:
    items: list[Any] = []
    params = {**params, "limit": 3}
    while True:
        r = client.get(url, params=params)
        assert r.status_code == 200, r.text
        doc = r.json()
        items += doc["items"]
        if not doc["next_cursor"]:
            return items
        params["cursor"] = doc["next_cursor"]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(reg=registries())
def test_analytics_match_the_model(anon: TestClient, db: Session, reg: Registry) -> None:
    try:
        write(db, reg)
        check(anon, reg)
    finally:
        end_example(db)


def check(anon: TestClient, reg: Registry) -> None:
    as_of = {} if reg.as_of is None else {"as_of": reg.as_of.isoformat()}
    for li, spec in enumerate(reg.letters):
        r = anon.get(f"/v1/letters/{spec.slug}/counts", params=as_of)
        assert r.status_code == 200, r.text
        assert r.json() == model_counts(reg, li)

        doc = anon.get(f"/v1/letters/{spec.slug}/timeline", params={"interval": reg.interval}).json()
        assert doc["points"] == model_points(reg, li)
        assert len(doc["events"]) == sum(1 for l_, _ in reg.events if l_ == li)
        if doc["points"]:
            assert doc["points"][-1]["cumulative"] == len(counting(reg, li))

    # The letter list's recorded counts (summed from the rollups, as of today).
    today = date.today()
    listed = anon.get("/v1/letters", params={"limit": 100}).json()["items"]
    assert {item["slug"]: item["recorded_signatory_count"] for item in listed} == {
        spec.slug: sum(
            1
            for s in reg.signatures
            if s.letter == li and s.signed_on <= today and (s.withdrawn_on is None or s.withdrawn_on > today)
        )
        for li, spec in enumerate(reg.letters)
    }

    letters = ",".join(reg.letters[li].slug for li in reg.order)
    r = anon.get("/v1/overlaps", params={"letters": letters})
    assert r.status_code == 200, r.text
    assert r.json() == model_overlaps(reg)
    for match in ("all", "any", "only"):
        got = pages(anon, "/v1/overlaps/signatories", {"letters": letters, "match": match})
        assert [a["id"] for a in got] == model_signatories(reg, match)

    in_campaign = [li for li, spec in enumerate(reg.letters) if spec.in_campaign]
    r = anon.get("/v1/overlaps", params={"campaign": "prop-camp"})
    if len(in_campaign) < 2:
        assert r.status_code == 422
    else:
        assert r.json()["letters"] == [reg.letters[li].slug for li in in_campaign]

    assert anon.get("/v1/campaigns/prop-camp/reach").json() == model_reach(reg)
    doc = anon.get("/v1/campaigns/prop-camp/timeline", params={"interval": reg.interval}).json()
    assert [s["letter"] for s in doc["series"]] == [reg.letters[li].slug for li in in_campaign]
    assert [s["points"] for s in doc["series"]] == [model_points(reg, li) for li in in_campaign]
    assert doc["distinct"] == model_distinct(reg)

    for actor, actor_id in enumerate(reg.ids["actors"][:3]):
        if actor in reg.gone:
            assert (
                anon.get(f"/v1/actors/{actor_id}/co-signatories", follow_redirects=False).status_code == 301
            )
            continue
        got = pages(anon, f"/v1/actors/{actor_id}/co-signatories", {})
        assert [(i["actor"]["id"], i["shared_letters"]) for i in got] == model_co_signatories(reg, actor)


# --- corrections: merges, moves and retractions ---------------------------------------------


def corrections(n: int) -> st.SearchStrategy[list[Correction]]:
    one = st.one_of(
        st.tuples(st.just("merge"), st.integers(0, 6), st.integers(0, 6)),
        st.tuples(st.just("move"), st.integers(0, 40), st.integers(0, 6)),
        st.tuples(st.just("retract"), st.integers(0, 40), st.just(0)),
    )
    return st.lists(one, max_size=n)


def model_merge(reg: Registry, keep: int, other: int) -> None:
    """SPEC §6: the other actor's signatures, seats and fields fold into the kept one."""
    k, o = reg.actors[keep], reg.actors[other]
    reg.actors[keep] = ActorSpec(k.kind, k.country or o.country, k.org_type or o.org_type)
    seen: dict[tuple[Any, ...], int] = {}
    kept_memberships, kept_ids = [], []
    for m, mid in sorted(zip(reg.memberships, reg.ids["memberships"], strict=True), key=lambda t: t[1]):
        if m.actor == other:
            m.actor = keep
        key = (m.actor, m.body, m.party, m.start, m.end)
        if m.actor == keep and key in seen:
            continue  # an identical seat is kept once
        seen[key] = mid
        kept_memberships.append(m)
        kept_ids.append(mid)
    reg.memberships, reg.ids["memberships"] = kept_memberships, kept_ids
    out: list[SignatureSpec] = []
    by_letter: dict[int, list[SignatureSpec]] = defaultdict(list)
    for s in reg.signatures:  # (in the order they were made: their ids)
        if s.actor in (keep, other):
            by_letter[s.letter].append(s)
        else:
            out.append(s)
    for group in by_letter.values():
        first = min(group, key=lambda s: (s.signed_on, reg.signatures.index(s)))
        withdrawn = [s.withdrawn_on for s in group]
        first.withdrawn_on = None if None in withdrawn else max(w for w in withdrawn if w is not None)
        first.actor = keep
        out.append(first)
    reg.signatures = sorted(out, key=lambda s: reg.signatures.index(s))
    reg.gone.add(other)


def apply(client: TestClient, reg: Registry, fix: Correction) -> None:
    """One correction through the API and in the model (when the API takes it)."""
    ids = reg.ids["actors"]
    op, x, y = fix
    if op == "merge":
        if x == y or x >= len(ids) or y >= len(ids) or {x, y} & reg.gone:
            return
        if reg.actors[x].kind != reg.actors[y].kind:
            assert client.post(f"/v1/actors/{ids[x]}/merge", json={"merge": [ids[y]]}).status_code == 409
            return
        r = client.post(f"/v1/actors/{ids[x]}/merge", json={"merge": [ids[y]]})
        assert r.status_code == 200, r.text
        model_merge(reg, x, y)
        return
    if x >= len(reg.signatures):
        return
    s = reg.signatures[x]
    url = f"/v1/letters/{reg.letters[s.letter].slug}/signatures/{ids[s.actor]}"
    if op == "retract":
        r = client.post(f"{url}/retract", json={"reason": "recorded by mistake"})
        assert r.status_code == 200, r.text
        reg.signatures.remove(s)
        return
    if y >= len(ids) or y in reg.gone or y == s.actor:
        return
    r = client.patch(url, json={"actor_id": ids[y]})
    if any(t.letter == s.letter and t.actor == y for t in reg.signatures):
        assert r.status_code == 409, r.text
        return
    assert r.status_code == 200, r.text
    s.actor = y


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(reg=registries(), fixes=corrections(6))
def test_analytics_match_the_model_after_corrections(
    client: TestClient, anon: TestClient, db: Session, reg: Registry, fixes: list[Correction]
) -> None:
    """Merges, moves and retractions leave every analytic as the model says, and the kept
    rollups and pair counts as a rebuild makes them."""
    try:
        write(db, reg)
        db.flush()
        for fix in fixes:
            apply(client, reg, fix)
        check(anon, reg)
        db.expire_all()
        assert kept_pairs(db) == recomputed_pairs(db)
        kept = rollups.snapshot(db)
        rollups.rebuild(db)
        assert rollups.snapshot(db) == kept
    finally:
        end_example(db)
