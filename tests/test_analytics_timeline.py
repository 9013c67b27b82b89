"""Timelines of a letter and of a campaign: buckets, zero-filling, withdrawals, events."""

from __future__ import annotations

import csv
import io
from datetime import date
from itertools import pairwise
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import builders as b

D = date


def _points(doc: dict[str, Any]) -> list[tuple[str, int, int, int]]:
    return [(p["date"], p["new"], p["withdrawn"], p["cumulative"]) for p in doc["points"]]


def _year_end(db: Session) -> None:
    letter = b.letter(db, "ye", published_on=D(2020, 12, 28))
    days = [D(2020, 12, 28), D(2020, 12, 31), D(2021, 1, 3), D(2021, 1, 4), D(2021, 1, 20), D(2021, 3, 2)]
    for i, day in enumerate(days):
        withdrawn = D(2021, 4, 15) if i == 3 else None
        b.sign(db, letter, b.actor(db, f"A{i}"), day, withdrawn_on=withdrawn)
    b.event(db, D(2020, 12, 1), "other", on=letter, note="drafted")  # before the first signature
    b.event(db, D(2021, 5, 3), "debated", on=letter, note="debated in the House")


def test_weeks_start_on_monday_across_the_year_end(anon: TestClient, db: Session) -> None:
    _year_end(db)
    r = anon.get("/v1/letters/ye/timeline", params={"interval": "week"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["letter"] == "ye" and doc["interval"] == "week"
    points = _points(doc)
    # 2020-12-28 is a Monday: Thu 31st and Sun 3 January fall in its week.
    assert points[:4] == [
        ("2020-12-28", 3, 0, 3),
        ("2021-01-04", 1, 0, 4),
        ("2021-01-11", 0, 0, 4),
        ("2021-01-18", 1, 0, 5),
    ]
    assert ("2021-03-01", 1, 0, 6) in points
    assert ("2021-04-12", 0, 1, 5) in points
    assert points[-1] == ("2021-05-03", 0, 0, 5)  # the event's week ends the series
    dates = [D.fromisoformat(p[0]) for p in points]
    assert all(d.weekday() == 0 for d in dates)
    assert all((later - earlier).days == 7 for earlier, later in pairwise(dates))
    assert [e["date"] for e in doc["events"]] == ["2020-12-01", "2021-05-03"]
    assert doc["events"][1] == {"date": "2021-05-03", "kind": "debated", "note": "debated in the House"}


def test_months_start_on_the_first_and_gaps_are_zero_filled(anon: TestClient, db: Session) -> None:
    _year_end(db)
    doc = anon.get("/v1/letters/ye/timeline", params={"interval": "month"}).json()
    assert _points(doc) == [
        ("2020-12-01", 2, 0, 2),
        ("2021-01-01", 3, 0, 5),
        ("2021-02-01", 0, 0, 5),
        ("2021-03-01", 1, 0, 6),
        ("2021-04-01", 0, 1, 5),
        ("2021-05-01", 0, 0, 5),
    ]
    assert doc["points"][-1]["cumulative"] == anon.get("/v1/letters/ye/counts").json()["recorded"]


def test_days_are_consecutive(anon: TestClient, db: Session) -> None:
    _year_end(db)
    points = _points(anon.get("/v1/letters/ye/timeline").json())
    assert points[0] == ("2020-12-28", 1, 0, 1)
    assert points[1] == ("2020-12-29", 0, 0, 1)
    assert points[-1] == ("2021-05-03", 0, 0, 5)
    assert len(points) == (D(2021, 5, 3) - D(2020, 12, 28)).days + 1
    assert sum(p[1] for p in points) == 6 and sum(p[2] for p in points) == 1


def test_withdrawn_on_the_signing_day(anon: TestClient, db: Session) -> None:
    letter = b.letter(db, "same-day")
    b.sign(db, letter, b.actor(db, "Quick"), D(2021, 6, 1), withdrawn_on=D(2021, 6, 1))
    b.sign(db, letter, b.actor(db, "Stays"), D(2021, 6, 2))
    doc = anon.get("/v1/letters/same-day/timeline").json()
    assert _points(doc) == [("2021-06-01", 1, 1, 0), ("2021-06-02", 1, 0, 1)]


def test_empty_letter_and_events_only(anon: TestClient, db: Session) -> None:
    empty = b.letter(db, "nothing")
    doc = anon.get("/v1/letters/nothing/timeline", params={"interval": "week"}).json()
    assert doc["points"] == [] and doc["events"] == []
    b.event(db, D(2021, 1, 6), "published", on=empty)
    b.event(db, D(2021, 1, 20), "delivered", on=empty)
    doc = anon.get("/v1/letters/nothing/timeline", params={"interval": "week"}).json()
    assert _points(doc) == [("2021-01-04", 0, 0, 0), ("2021-01-11", 0, 0, 0), ("2021-01-18", 0, 0, 0)]


def test_csv_and_bad_input(anon: TestClient, db: Session) -> None:
    _year_end(db)
    r = anon.get("/v1/letters/ye/timeline", params={"interval": "month", "format": "csv"})
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["date", "new", "withdrawn", "cumulative"]
    assert rows[1] == ["2020-12-01", "2", "0", "2"] and len(rows) == 7
    r = anon.get("/v1/letters/ye/timeline", params={"interval": "year"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.interval"
    assert anon.get("/v1/letters/nope/timeline").status_code == 404
    assert anon.get("/v1/campaigns/nope/timeline").status_code == 404
    assert anon.get("/v1/campaigns/nope/reach").status_code == 404


def test_campaign_timeline(anon: TestClient, db: Session) -> None:
    camp = b.campaign(db, "camp")
    first = b.letter(db, "first", campaign=camp)
    second = b.letter(db, "second", campaign=camp)
    outside = b.letter(db, "outside")
    both, one, late, quitter = (b.actor(db, n) for n in ("Both", "One", "Late", "Quitter"))
    b.sign(db, first, both, D(2021, 2, 1))
    b.sign(db, second, both, D(2021, 2, 3))
    b.sign(db, first, one, D(2021, 2, 2))
    # Withdrew from the first letter: its first signature that still counts is on the second.
    b.sign(db, first, late, D(2021, 2, 1), withdrawn_on=D(2021, 2, 4))
    b.sign(db, second, late, D(2021, 2, 5))
    b.sign(db, first, quitter, D(2021, 2, 2), withdrawn_on=D(2021, 2, 6))  # never counts in distinct
    b.sign(db, outside, b.actor(db, "Elsewhere"), D(2021, 1, 1))
    b.event(db, D(2021, 2, 10), "delivered", of_campaign=camp, note="delivered together")
    b.event(db, D(2021, 2, 7), "response", on=second)

    r = anon.get("/v1/campaigns/camp/timeline")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["campaign"] == "camp" and doc["interval"] == "day"
    assert [s["letter"] for s in doc["series"]] == ["first", "second"]
    for s in doc["series"]:
        own = anon.get(f"/v1/letters/{s['letter']}/timeline").json()
        assert s["points"] == own["points"]
    assert [(p["date"], p["new"], p["cumulative"]) for p in doc["distinct"]] == [
        ("2021-02-01", 1, 1),
        ("2021-02-02", 1, 2),
        ("2021-02-03", 0, 2),
        ("2021-02-04", 0, 2),
        ("2021-02-05", 1, 3),
    ]
    assert doc["distinct"][-1]["cumulative"] == anon.get("/v1/campaigns/camp/reach").json()["distinct"]
    assert [(e["date"], e["letter"]) for e in doc["events"]] == [
        ("2021-02-07", "second"),
        ("2021-02-10", None),
    ]

    r = anon.get("/v1/campaigns/camp/timeline", params={"interval": "month", "format": "csv"})
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["letter", "date", "new", "withdrawn", "cumulative"]
    assert ["first", "2021-02-01", "4", "2", "2"] in rows
    assert ["", "2021-02-01", "3", "", "3"] in rows

    b.campaign(db, "bare")
    doc = anon.get("/v1/campaigns/bare/timeline").json()
    assert doc["series"] == [] and doc["distinct"] == [] and doc["events"] == []
