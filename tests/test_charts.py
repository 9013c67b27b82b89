"""The SVG charts: valid XML with <title> and <desc>, the same numbers as the JSON they draw,
every text escaped, cacheable, and errors as for the API."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.analytics.results import Entry, Intersection, Overlaps, Pair
from app.charts import Marker, Series, TimelineData, bar_chart, heatmap_chart, timeline_chart, upset_chart
from app.charts.timeline import nice_step
from tests import builders as b

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '</title><script>alert(1)</script> & <b>"x"</b>'
BREAKDOWNS = ("kind", "body", "party", "country", "org_type")


def parse(document: str) -> ET.Element:
    root = ET.fromstring(document)
    assert root.tag == f"{SVG}svg"
    assert root.get("viewBox") and root.get("width") == "100%" and root.get("role") == "img"
    children = list(root)
    assert children[0].tag == f"{SVG}title" and (children[0].text or "").strip()
    assert children[1].tag == f"{SVG}desc" and (children[1].text or "").strip()
    assert not list(root.iter(f"{SVG}script"))
    return root


def title_of(root: ET.Element) -> str:
    return root[0].text or ""


def desc_of(root: ET.Element) -> str:
    return root[1].text or ""


def scenario(db: Session) -> None:
    """Letter "a" (hostile title): 3 MPs (2 Labour, 1 Conservative), 1 peer, 2 organisations
    (one withdrawn), events; letter "b": 2 of the same people and one more."""
    commons, lords = b.body(db, "commons", "House of Commons"), b.body(db, "lords", "House of Lords")
    labour, tories = b.party(db, "labour", "Labour"), b.party(db, "conservative", "Conservative")
    campaign = b.campaign(db, "camp", "Campaign")
    la = b.letter(db, "a", title=f"Letter {HOSTILE}", campaign=campaign, claimed=10)
    lb = b.letter(db, "b", title="Letter B", campaign=campaign)
    people = [b.actor(db, f"MP {i}", country="GB") for i in range(3)]
    for person, party in zip(people, (labour, labour, tories), strict=True):
        b.membership(db, person, commons, party, date(2019, 12, 12))
    peer = b.actor(db, f"Lord {HOSTILE}", country="GB")
    b.membership(db, peer, lords, None, date(2000, 1, 1))
    groups = [b.actor(db, f"Group {i}", kind="organisation", country="FR", org_type="ngo") for i in range(2)]
    for who, day in zip(
        [*people, peer],
        (date(2020, 9, 9), date(2020, 9, 9), date(2020, 9, 11), date(2020, 9, 12)),
        strict=True,
    ):
        b.sign(db, la, who, day)
    b.sign(db, la, groups[0], date(2020, 9, 10))
    b.sign(db, la, groups[1], date(2020, 9, 10), withdrawn_on=date(2020, 9, 13))
    for who in (people[0], peer, b.actor(db, "Other")):
        b.sign(db, lb, who)
    b.event(db, date(2020, 9, 9), "published", on=la, note=f"Published {HOSTILE}")
    b.event(db, date(2020, 9, 14), "delivered", on=la)


@pytest.mark.parametrize("breakdown", BREAKDOWNS)
def test_breakdown_chart_draws_the_counts(anon: TestClient, db: Session, breakdown: str) -> None:
    scenario(db)
    counts = anon.get("/v1/letters/a/counts").json()
    r = anon.get(f"/v1/letters/a/charts/{breakdown}.svg")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("image/svg+xml")
    assert r.headers["cache-control"] == "public, max-age=60"
    assert r.headers["etag"]
    root = parse(r.text)
    assert (
        title_of(root)
        == f"Letter {HOSTILE}: signatures by {breakdown.replace('org_type', 'type of organisation')}"
    )
    entries = counts[f"by_{breakdown}"]
    bars = [g for g in root.iter(f"{SVG}g") if g.get("class") == "bar"]
    assert len(bars) == len(entries) > 0
    for bar, entry in zip(bars, entries, strict=True):
        texts = [t.text for t in bar.iter(f"{SVG}text")]
        value = texts[1] or ""
        assert value.split(" ")[0] == str(entry["count"])
        assert (bar.find(f"{SVG}title").text or "").startswith(entry["label"])  # type: ignore[union-attr]
        assert f"{entry['label']}: {entry['count']}" in desc_of(root)
    assert desc_of(root).startswith(f"{counts['recorded']} signatures recorded")
    assert (
        sum(int((bar.findall(f"{SVG}text")[1].text or "").split(" ")[0]) for bar in bars)
        == counts["recorded"]
    )


def test_body_chart_shows_the_share_of_the_body(anon: TestClient, db: Session) -> None:
    scenario(db)
    counts = anon.get("/v1/letters/a/counts").json()
    commons = next(e for e in counts["by_body"] if e["key"] == "commons")
    assert commons["count"] == 3 and commons["share_of_body"] == 1.0
    root = parse(anon.get("/v1/letters/a/charts/body.svg").text)
    assert "House of Commons: 3 · 100.0% of seats" in desc_of(root)


def test_as_of_moves_the_chart_with_the_counts(anon: TestClient, db: Session) -> None:
    scenario(db)
    root = parse(anon.get("/v1/letters/a/charts/kind.svg", params={"as_of": "2020-09-09"}).text)
    assert desc_of(root).startswith("2 signatures recorded as of 2020-09-09")


def test_timeline_chart_draws_the_points_and_events(anon: TestClient, db: Session) -> None:
    scenario(db)
    timeline = anon.get("/v1/letters/a/timeline").json()
    r = anon.get("/v1/letters/a/timeline.svg")
    assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=60"
    root = parse(r.text)
    last = timeline["points"][-1]["cumulative"]
    assert last == 5
    assert f"ending at {last}" in desc_of(root)
    assert "2 events: 2020-09-09 published; 2020-09-14 delivered" in desc_of(root)
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert str(last) in texts  # the line's end label
    assert [p.findtext(f"{SVG}title") for p in root.iter(f"{SVG}path")] == [f"Signatures: {last}"]
    assert any(t.startswith(f"1. 2020-09-09 published — Published {HOSTILE}"[:60]) for t in texts)
    new_bars = [r for r in root.iter(f"{SVG}rect") if (r.findtext(f"{SVG}title") or "").endswith(" new")]
    assert sorted((r.findtext(f"{SVG}title") or "") for r in new_bars) == sorted(
        f"{p['date']}: {p['new']} new" for p in timeline["points"] if p["new"]
    )
    weekly = parse(anon.get("/v1/letters/a/timeline.svg", params={"interval": "week"}).text)
    assert "per week" in desc_of(weekly)


def test_overlap_charts_draw_the_overlaps(anon: TestClient, db: Session) -> None:
    scenario(db)
    doc = anon.get("/v1/overlaps", params={"letters": "a,b"}).json()
    heat = anon.get("/v1/overlaps.svg", params={"letters": "a,b"})
    assert heat.status_code == 200 and heat.headers["cache-control"] == "public, max-age=60"
    root = parse(heat.text)
    cells = [g for g in root.iter(f"{SVG}g") if g.get("class") == "cell"]
    assert len(cells) == 4
    values = [int(c.find(f"{SVG}text").text or "") for c in cells]  # type: ignore[union-attr]
    common = doc["pairs"][0]["common"]
    assert values == [doc["sizes"]["a"], common, common, doc["sizes"]["b"]] == [5, 2, 2, 3]

    upset = parse(anon.get("/v1/overlaps.svg", params={"campaign": "camp", "chart": "upset"}).text)
    groups = [g for g in upset.iter(f"{SVG}g") if g.get("class") == "intersection"]
    assert len(groups) == len(doc["intersections"])
    for group, inter in zip(groups, doc["intersections"], strict=True):
        assert group.findall(f"{SVG}text")[0].text == str(inter["count"])
        filled = [c for c in group.iter(f"{SVG}circle") if c.get("fill") != "#ffffff"]
        assert len(filled) == len(inter["letters"])
    assert f"{doc['union']} distinct signatories" in desc_of(upset)


def test_errors_are_problems(anon: TestClient, db: Session) -> None:
    scenario(db)
    r = anon.get("/v1/letters/nope/charts/party.svg")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    assert anon.get("/v1/letters/nope/timeline.svg").status_code == 404
    assert anon.get("/v1/letters/a/charts/colour.svg").status_code == 422
    assert anon.get("/v1/letters/a/timeline.svg", params={"interval": "year"}).status_code == 422
    assert anon.get("/v1/overlaps.svg", params={"letters": "a"}).status_code == 422
    assert anon.get("/v1/overlaps.svg", params={"letters": "a,zzz"}).status_code == 404
    assert anon.get("/v1/overlaps.svg", params={"letters": "a,b", "chart": "pie"}).status_code == 422


def test_charts_answer_304_to_their_etag(anon: TestClient, db: Session) -> None:
    scenario(db)
    first = anon.get("/v1/letters/a/charts/party.svg")
    again = anon.get("/v1/letters/a/charts/party.svg", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


def test_charts_are_in_the_openapi(anon: TestClient) -> None:
    paths = anon.get("/openapi.json").json()["paths"]
    ops = {
        paths["/v1/letters/{slug}/charts/{breakdown}.svg"]["get"]["operationId"],
        paths["/v1/letters/{slug}/timeline.svg"]["get"]["operationId"],
        paths["/v1/overlaps.svg"]["get"]["operationId"],
    }
    assert ops == {"letter_breakdown_chart", "letter_timeline_chart", "overlaps_chart"}
    assert not any(p in paths for p in ("/", "/letters/{slug}", "/campaigns/{slug}", "/actors/{actor_id}"))


# --- the renderer alone ----------------------------------------------------------------------


def test_empty_charts_still_have_title_and_desc() -> None:
    root = parse(bar_chart([], title="T", desc="D"))
    assert "No signatures recorded." in [t.text for t in root.iter(f"{SVG}text")]
    parse(timeline_chart(TimelineData(interval="day", series=[]), title="T", desc="D"))
    nothing = Overlaps(letters=["a", "b"], sizes={"a": 0, "b": 0}, union=0, pairs=[], intersections=[])
    parse(upset_chart(nothing, labels={}, title="T", desc="D"))
    parse(heatmap_chart(nothing, labels={}, title="T", desc="D"))


def test_hostile_text_is_escaped_everywhere() -> None:
    entries = [Entry(key="x", label=HOSTILE, count=3), Entry(key=None, label="Unknown", count=1)]
    root = parse(bar_chart(entries, title=HOSTILE, desc=HOSTILE, id_prefix="p"))
    assert title_of(root) == HOSTILE and desc_of(root) == HOSTILE
    data = TimelineData(
        interval="day",
        series=[Series(HOSTILE, [(date(2020, 1, 1), 2), (date(2020, 1, 2), 3)])],
        new=[(date(2020, 1, 1), 2), (date(2020, 1, 2), 1)],
        events=[Marker(date(2020, 1, 1), HOSTILE, HOSTILE), Marker(date(2020, 1, 1), "other", None)],
    )
    parse(timeline_chart(data, title=HOSTILE, desc=HOSTILE))
    result = Overlaps(
        letters=["a", "b"],
        sizes={"a": 2, "b": 1},
        union=2,
        pairs=[Pair(a="a", b="b", common=1, jaccard=0.5)],
        intersections=[Intersection(letters=["a", "b"], count=1), Intersection(letters=["a"], count=1)],
    )
    labels = {"a": HOSTILE, "b": "<b>"}
    for chart in (heatmap_chart, upset_chart):
        document = chart(result, labels=labels, title=HOSTILE, desc=HOSTILE)
        assert "<script>" not in document and "<b>" not in document
        parse(document)


def test_many_letters_keep_the_upset_chart_bounded() -> None:
    slugs = [f"l{i}" for i in range(8)]
    groups = [Intersection(letters=[s, t], count=1) for s in slugs for t in slugs if s < t]
    result = Overlaps(letters=slugs, sizes=dict.fromkeys(slugs, 7), union=28, pairs=[], intersections=groups)
    root = parse(upset_chart(result, labels={}, title="T", desc="D"))
    assert len([g for g in root.iter(f"{SVG}g") if g.get("class") == "intersection"]) == 28
    many = Overlaps(letters=slugs, sizes={}, union=60, pairs=[], intersections=groups + groups)
    root = parse(upset_chart(many, labels={}, title="T", desc="D"))
    assert len([g for g in root.iter(f"{SVG}g") if g.get("class") == "intersection"]) == 40
    assert "The 40 largest of 56 intersections." in [t.text for t in root.iter(f"{SVG}text")]


def test_nice_steps() -> None:
    assert [nice_step(n) for n in (1, 4, 5, 9, 130, 321, 1454, 2_000_000)] == [
        1,
        1,
        2,
        5,
        50,
        100,
        500,
        500_000,
    ]
