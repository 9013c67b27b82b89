"""Markup in the registry's names stays text in every document the templates render: the widget,
the badge, each SVG chart alone and the pages that inline them. Nothing here escapes by hand, so
these fail if the templates' autoescape is off."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Source
from tests import builders as b

MARK = '<script>alert(1)</script> "q" & co'  # short enough for a badge label (40)
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
SVG = "{http://www.w3.org/2000/svg}"


def registry(db: Session) -> None:
    """Two letters of a campaign, every name with markup: titles, the campaign, an actor, a
    body, a party, an event's note and a source's label."""
    campaign = b.campaign(db, "camp", f"Campaign {MARK}")
    first = b.letter(db, "x", title=f"Letter {MARK}", campaign=campaign, claimed=40)
    second = b.letter(db, "y", title=f"Other {MARK}", campaign=campaign)
    body = b.body(db, "house", f"House {MARK}")
    party = b.party(db, "mark", f"Party {MARK}")
    person = b.actor(db, f"Actor {MARK}", country="GB")
    b.membership(db, person, body, party, date(2019, 12, 12))
    group = b.actor(db, f"Group {MARK}", kind="organisation", country="FR", org_type="ngo")
    b.sign(db, first, person, date(2020, 9, 9))
    b.sign(db, first, group, date(2020, 9, 10))
    b.sign(db, second, person, date(2020, 9, 11))
    b.event(db, date(2020, 9, 9), "published", on=first, note=f"Note {MARK}")
    db.add(Source(letter_id=first.id, label=f"Source {MARK}", url="https://example.org/x?a=1&b=2"))
    db.flush()


def assert_escaped(document: str, *, own_scripts: int = 0) -> None:
    assert MARK not in document
    assert "<script>alert(1)" not in document
    assert '"q" & co' not in document
    assert ESCAPED in document  # the name is there, as text
    assert document.count("<script>") == own_scripts


def svg_texts(document: str) -> list[str]:
    """Every text and attribute value of a well-formed SVG document, unescaped by the parser."""
    root = ET.fromstring(document)
    assert root.tag == f"{SVG}svg"
    return [t for el in root.iter() for t in (el.text, *el.attrib.values()) if t]


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/v1/letters/x/charts/kind.svg", f"Letter {MARK}"),
        ("/v1/letters/x/charts/body.svg", f"House {MARK}"),
        ("/v1/letters/x/charts/party.svg", f"Party {MARK}"),
        ("/v1/letters/x/charts/country.svg", f"Letter {MARK}"),
        ("/v1/letters/x/timeline.svg", f"Letter {MARK}"),
        ("/v1/overlaps.svg?letters=x,y", f"Other {MARK}"),
        ("/v1/overlaps.svg?campaign=camp&chart=upset", f"Other {MARK}"),
    ],
)
def test_every_svg_chart_escapes_markup(anon: TestClient, db: Session, url: str, name: str) -> None:
    registry(db)
    r = anon.get(url)
    assert r.status_code == 200, r.text
    assert_escaped(r.text)
    # once parsed, the names are whole again: in the chart's title and in the bars' or cells' titles
    texts = svg_texts(r.text)
    assert any(f"Letter {MARK}" in t for t in texts)
    assert any(name in t for t in texts)


def test_the_badge_escapes_its_label(anon: TestClient, db: Session) -> None:
    registry(db)
    r = anon.get("/v1/letters/x/badge.svg", params={"label": MARK})
    assert r.status_code == 200, r.text
    assert_escaped(r.text)
    root = ET.fromstring(r.text)
    assert root.get("aria-label") == f"{MARK}: 2"
    assert root.findtext(f"{SVG}title") == f"{MARK}: 2"


def test_the_widget_escapes_titles_parties_and_sources(anon: TestClient, db: Session) -> None:
    registry(db)
    r = anon.get("/embed/letters/x")
    assert r.status_code == 200, r.text
    html = r.text
    assert_escaped(html, own_scripts=1)  # the widget's own script, allowed by its hash
    assert f' rel="noopener">Letter {ESCAPED} &#34;q&#34; &amp; co</a></h1>' in html
    assert f'title="Party {ESCAPED} &#34;q&#34; &amp; co: 1"' in html  # an attribute: quotes escaped
    assert f"Source {ESCAPED}" in html
    assert 'href="https://example.org/x?a=1&amp;b=2"' in html


@pytest.mark.parametrize("page", ["/letters/x", "/campaigns/camp", "/letters/y"])
def test_the_pages_and_their_inline_charts_escape_markup(anon: TestClient, db: Session, page: str) -> None:
    registry(db)
    r = anon.get(page)
    assert r.status_code == 200, r.text
    assert_escaped(r.text)
    assert r.text.count("<svg") >= 1
