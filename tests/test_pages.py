"""The pages: each renders on both backends with the API's numbers, escapes every text,
filters and pages, answers 404 pages for unknown slugs and ids, and is cacheable."""

from __future__ import annotations

import random
import re
import xml.etree.ElementTree as ET
from datetime import date
from html.parser import HTMLParser

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from app.demo.loader import CAMPAIGN_SLUG, MPS_LETTER, UN_LETTER, load_demo
from app.models import Claim, Event, Source
from tests import builders as b

HOSTILE = "<script>alert(1)</script>&\"'"


class Tables(HTMLParser):
    """Every <table> with an id: its body rows as lists of cell texts, and their data-* attributes."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.row_attrs: dict[str, list[dict[str, str]]] = {}
        self._table: str | None = None
        self._in_body = False
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table" and a.get("id"):
            self._table = a["id"]
            self.tables[self._table], self.row_attrs[self._table] = [], []
        elif tag == "tbody" and self._table:
            self._in_body = True
        elif tag == "tr" and self._table and self._in_body:
            self.tables[self._table].append([])
            self.row_attrs[self._table].append(a)
        elif tag in ("td", "th") and self._table and self._in_body:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table, self._in_body = None, False
        elif tag in ("td", "th") and self._cell is not None and self._table:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def big_number(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">([^<]*)<', html)
    assert found, element_id
    return found.group(1)


def scenario(db: Session) -> dict[str, int]:
    commons = b.body(db, "commons", "House of Commons")
    labour, tories = b.party(db, "labour", "Labour"), b.party(db, "conservative", f"Tories {HOSTILE}")
    camp = b.campaign(db, "camp", f"Campaign {HOSTILE}")
    la = b.letter(
        db, "a", title=f"Letter {HOSTILE}", campaign=camp, claimed=130, published_on=date(2020, 9, 9)
    )
    lb = b.letter(db, "b", title="Letter B", campaign=camp, published_on=date(2020, 9, 10))
    b.letter(db, "old", title="Older letter", published_on=date(2019, 1, 1))
    mps = [b.actor(db, f"MP {i} {HOSTILE}", country="GB") for i in range(4)]
    for mp, party in zip(mps, (labour, labour, tories, None), strict=True):
        b.membership(db, mp, commons, party, date(2019, 12, 12), constituency="Somewhere")
    ngo = b.actor(db, "Group", kind="organisation", country="FR", org_type="ngo")
    for who in [*mps, ngo]:
        b.sign(db, la, who, capacity=f"MP {HOSTILE}")
    b.sign(db, la, b.actor(db, "Gone"), withdrawn_on=date(2020, 9, 12))
    for who in (mps[0], mps[1], b.actor(db, "Only B")):
        b.sign(db, lb, who)
    b.event(db, date(2020, 9, 9), "published", on=la, note=f"Out {HOSTILE}")
    return {"mp0": mps[0].id, "ngo": ngo.id}


def no_raw_hostile(html: str) -> None:
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_letters_page_lists_newest_first_with_filters(anon: TestClient, db: Session) -> None:
    scenario(db)
    r = anon.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    slugs = re.findall(r'<li class="letter" data-slug="([^"]+)"', r.text)
    assert slugs == ["b", "a", "old"]
    assert re.search(
        r'data-slug="a">.*?<span class="recorded">5</span> recorded.*?<span class="claimed">130</span>',
        r.text,
        re.S,
    )
    no_raw_hostile(r.text)
    assert 'href="/letters/a"' in r.text and 'href="/campaigns/camp"' in r.text
    assert re.findall(r'data-slug="([^"]+)"', anon.get("/", params={"q": "older"}).text) == ["old"]
    assert re.findall(r'data-slug="([^"]+)"', anon.get("/", params={"campaign": "camp", "q": ""}).text) == [
        "b",
        "a",
    ]
    none = anon.get("/", params={"q": "nothing-like-this"})
    assert none.status_code == 200 and "No letters match." in none.text


def test_letters_page_filters_by_recipient(client: TestClient, anon: TestClient, db: Session) -> None:
    scenario(db)
    r = client.post("/v1/letters/b/recipients", json={"actor": {"kind": "person", "name": f"Amb {HOSTILE}"}})
    assert r.status_code == 201, r.text
    recipient = r.json()["actor"]["id"]
    page = anon.get("/")
    assert f'<option value="{recipient}">Amb &lt;script&gt;' in page.text
    assert re.findall(r'data-slug="([^"]+)"', anon.get("/", params={"recipient": str(recipient)}).text) == [
        "b"
    ]
    assert re.findall(r'data-slug="([^"]+)"', anon.get("/", params={"recipient": ""}).text) == [
        "b",
        "a",
        "old",
    ]


def test_letters_page_pages(anon: TestClient, db: Session) -> None:
    for i in range(23):
        b.letter(db, f"l{i:02d}", published_on=date(2021, 1, 1 + i))
    first = anon.get("/")
    seen = re.findall(r'data-slug="([^"]+)"', first.text)
    assert seen == [f"l{i:02d}" for i in range(22, 2, -1)]
    href = re.search(r'<a rel="next" href="([^"]+)"', first.text)
    assert href
    second = anon.get(href.group(1).replace("&amp;", "&"))
    assert re.findall(r'data-slug="([^"]+)"', second.text) == ["l02", "l01", "l00"]
    assert 'rel="next"' not in second.text and "First page" in second.text
    bad = anon.get("/", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("text/html")


def test_letter_page_shows_the_apis_numbers(anon: TestClient, db: Session) -> None:
    scenario(db)
    counts = anon.get("/v1/letters/a/counts").json()
    r = anon.get("/letters/a")
    assert r.status_code == 200
    html = r.text
    no_raw_hostile(html)
    assert big_number(html, "recorded") == str(counts["recorded"]) == "5"
    assert big_number(html, "claimed") == "130" and big_number(html, "withdrawn") == "1"
    tables = Tables(html)
    for breakdown in ("kind", "body", "party", "country", "org_type"):
        rows = tables.tables[f"table-{breakdown}"]
        keys = [a["data-key"] or None for a in tables.row_attrs[f"table-{breakdown}"]]
        entries = counts[f"by_{breakdown}"]
        assert keys == [e["key"] for e in entries]
        assert [(row[0], int(row[1])) for row in rows] == [(e["label"], e["count"]) for e in entries]
    body_rows = tables.tables["table-body"]
    assert body_rows[0][:2] == ["House of Commons", "4"] and body_rows[0][2] == "100.0%"
    # each chart on the page is the standalone chart
    for breakdown in ("party", "body"):
        svg = anon.get(f"/v1/letters/a/charts/{breakdown}.svg").text
        desc = re.search(r"<desc[^>]*>([^<]*)</desc>", svg)
        assert desc and desc.group(1) in html
    assert "Out &lt;script&gt;" in html  # the event
    signatories = tables.tables["signatory-table"]
    assert len(signatories) == 6
    assert sum(1 for row in signatories if "withdrawn" in row[-1]) == 1
    mp0 = next(row for row in signatories if row[0].startswith("MP 0"))
    assert mp0[2:5] == ["Labour", "House of Commons", "GB"]
    assert 'href="/v1/letters/a/signatures?format=csv"' in html
    # the embed snippet is shown as text, escaped once for the page: pasting it gives the HTML
    assert "&lt;iframe src=&#34;http://testserver/embed/letters/a&#34;" in html
    assert "title=&#34;Letter &amp;lt;script&amp;gt;" in html


def test_letter_page_filters_the_signatories(anon: TestClient, db: Session) -> None:
    scenario(db)
    html = anon.get("/letters/a", params={"party": "labour", "kind": "", "country": "gb"}).text
    rows = Tables(html).tables["signatory-table"]
    assert [row[0].split(" ")[:2] for row in rows] == [["MP", "0"], ["MP", "1"]]
    assert 'href="/v1/letters/a/signatures?party=labour&amp;country=GB&amp;format=csv"' in html
    assert '<option value="labour" selected>' in html
    orgs = Tables(anon.get("/letters/a", params={"kind": "organisation"}).text).tables["signatory-table"]
    assert [row[0] for row in orgs] == ["Group ngo"]


def test_letter_page_pages_the_signatories(anon: TestClient, db: Session) -> None:
    letter = b.letter(db, "big")
    for i in range(53):
        b.sign(db, letter, b.actor(db, f"Person {i:02d}"))
    html = anon.get("/letters/big").text
    assert len(Tables(html).tables["signatory-table"]) == 50
    href = re.search(r'<a rel="next" href="([^"]+)"', html)
    assert href
    rest = anon.get(href.group(1).replace("&amp;", "&")).text
    assert [row[0] for row in Tables(rest).tables["signatory-table"]] == [
        "Person 50",
        "Person 51",
        "Person 52",
    ]


def test_campaign_page_shows_reach_and_overlaps(anon: TestClient, db: Session) -> None:
    scenario(db)
    reach = anon.get("/v1/campaigns/camp/reach").json()
    doc = anon.get("/v1/overlaps", params={"campaign": "camp"}).json()
    r = anon.get("/campaigns/camp")
    assert r.status_code == 200
    html = r.text
    no_raw_hostile(html)
    assert big_number(html, "distinct") == str(reach["distinct"]) == "6"
    assert big_number(html, "signed-more") == str(reach["signed_more_than_one"]) == "2"
    assert big_number(html, "letters-count") == "2"
    tables = Tables(html)
    for breakdown in ("kind", "party"):
        rows = tables.tables[f"table-{breakdown}"]
        assert [(row[0], int(row[1])) for row in rows] == [
            (e["label"], e["count"]) for e in reach[f"by_{breakdown}"]
        ]
    assert [int(row[1]) for row in tables.tables["table-intersections"]] == [
        i["count"] for i in doc["intersections"]
    ]
    pairs = tables.tables["table-pairs"]
    assert [int(row[2]) for row in pairs] == [p["common"] for p in doc["pairs"]] == [2]
    # "who signed A but not B" follows to the actors themselves
    link = re.search(r'href="(/v1/overlaps/signatories\?letters=a%2Cb&amp;match=only)"', html)
    assert link
    only_a = anon.get(link.group(1).replace("&amp;", "&")).json()["items"]
    assert len(only_a) == 3  # MPs 2 and 3, the organisation (the withdrawn one does not count)
    assert "<svg" in html and 'id="heatmap-title"' in html and 'id="upset-title"' in html


def test_campaign_with_one_letter_has_no_overlaps(anon: TestClient, db: Session) -> None:
    camp = b.campaign(db, "solo")
    b.letter(db, "only", campaign=camp)
    r = anon.get("/campaigns/solo")
    assert (
        r.status_code == 200
        and "Overlaps are drawn for campaigns of 2 to 50 letters; this one has 1." in r.text
    )


def test_actor_page_shows_signed_received_seats_and_co_signatories(
    client: TestClient, anon: TestClient, db: Session
) -> None:
    ids = scenario(db)
    assert client.post("/v1/letters/old/recipients", json={"actor_id": ids["mp0"]}).status_code == 201
    r = anon.get(f"/actors/{ids['mp0']}")
    assert r.status_code == 200
    html = r.text
    no_raw_hostile(html)
    signed = anon.get(f"/v1/actors/{ids['mp0']}/signatures").json()["items"]
    assert len(signed) == 2 and html.count('<a href="/letters/a">') + html.count('<a href="/letters/b">') == 2
    assert '<a href="/letters/old">Older letter</a>' in html
    assert "House of Commons" in html and "2019-12-12" in html and "sitting" in html
    co = anon.get(f"/v1/actors/{ids['mp0']}/co-signatories").json()["items"]
    listed = re.findall(r'<li><a href="/actors/(\d+)">[^<]*</a> — <span class="count">(\d+)</span>', html)
    assert [(int(i), int(n)) for i, n in listed] == [(c["actor"]["id"], c["shared_letters"]) for c in co][:10]
    assert listed[0][1] == "2"


def test_unknown_slugs_and_ids_are_404_pages(anon: TestClient, db: Session) -> None:
    for path in ("/letters/nope", "/campaigns/nope", "/actors/999999"):
        r = anon.get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"].startswith("text/html")
        assert "Not found" in r.text and 'href="/"' in r.text
    hostile = anon.get("/letters/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert hostile.status_code == 404 and "<script>alert(1)" not in hostile.text


def test_pages_have_etags_and_static_files_are_ours(anon: TestClient, db: Session) -> None:
    scenario(db)
    first = anon.get("/letters/a")
    assert first.headers["etag"]
    assert anon.get("/letters/a", headers={"If-None-Match": first.headers["etag"]}).status_code == 304
    css = anon.get("/static/pages.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = anon.get("/static/pages.js")
    assert js.status_code == 200 and len(js.text.splitlines()) <= 12
    # (canonical and oEmbed discovery links name addresses; a browser loads nothing from them)
    loaded = r'<(?:link(?![^>]*rel="(?:canonical|alternate)")|script)[^>]+(?:href|src)="([^"]+)"'
    assets = re.findall(loaded, first.text)
    assert len(assets) >= 3
    for asset in assets:
        assert asset.startswith(("/static/", "data:")), asset


def test_demo_pages(anon: TestClient, db: Session) -> None:
    assert load_demo(db) is True
    index = anon.get("/").text
    assert re.findall(r'data-slug="([^"]+)"', index) == [UN_LETTER, MPS_LETTER]
    for slug in (MPS_LETTER, UN_LETTER):
        counts = anon.get(f"/v1/letters/{slug}/counts").json()
        html = anon.get(f"/letters/{slug}").text
        assert big_number(html, "recorded") == str(counts["recorded"])
        assert big_number(html, "claimed") == str(counts["claimed"])
        tables = Tables(html)
        assert [(r[0], int(r[1])) for r in tables.tables["table-party"]] == [
            (e["label"], e["count"]) for e in counts["by_party"]
        ]
    mps = anon.get(f"/letters/{MPS_LETTER}").text
    assert "Liu Xiaoming" in mps and "House of Commons" in mps and "133" in mps
    campaign = anon.get(f"/campaigns/{CAMPAIGN_SLUG}")
    assert campaign.status_code == 200
    reach = anon.get(f"/v1/campaigns/{CAMPAIGN_SLUG}/reach").json()
    assert big_number(campaign.text, "distinct") == str(reach["distinct"])
    recipient = anon.get(f"/v1/letters/{MPS_LETTER}/recipients").json()["items"][0]["actor"]["id"]
    assert "Received" in anon.get(f"/actors/{recipient}").text


def test_a_random_registry_renders_with_the_apis_numbers(anon: TestClient, db: Session) -> None:
    """Twelve letters of a campaign (one undated, one draft, one empty) and forty actors with
    random seats, signatures and withdrawals: every page and chart renders, with the API's numbers."""
    rng = random.Random(20200909)
    bodies = [b.body(db, f"body-{i}", f"Body {i}") for i in range(2)]
    parties = [b.party(db, f"party-{i}", f"Party {i}") for i in range(3)]
    camp = b.campaign(db, "random", "Random campaign")
    letters = [
        b.letter(
            db,
            f"r{i:02d}",
            campaign=camp,
            published_on=None if i == 3 else date(2020, 1 + i % 12, 1 + i),
            status="draft" if i == 4 else "published",
            claimed=rng.choice([None, 10, 50]),
        )
        for i in range(12)
    ]
    actors = []
    for i in range(40):
        person = rng.random() < 0.6
        who = b.actor(
            db,
            f"Actor {i}",
            kind="person" if person else "organisation",
            country=rng.choice([None, "GB", "FR", "DE"]),
            org_type=None if person else rng.choice([None, "ngo", "union"]),
        )
        if person and rng.random() < 0.8:
            b.membership(db, who, rng.choice(bodies), rng.choice([None, *parties]), date(2019, 1, 1))
        actors.append(who)
    for letter in letters[:-1]:  # the last letter stays empty
        for who in rng.sample(actors, rng.randint(1, 25)):
            day = date(2020, rng.randint(1, 12), rng.randint(1, 28))
            withdrawn = day.replace(day=28) if rng.random() < 0.1 else None
            b.sign(db, letter, who, day, withdrawn_on=withdrawn)
        b.event(db, date(2020, 6, 1), rng.choice(["published", "delivered", "debated"]), on=letter)

    index = anon.get("/")
    assert index.status_code == 200
    for letter in letters:
        counts = anon.get(f"/v1/letters/{letter.slug}/counts").json()
        r = anon.get(f"/letters/{letter.slug}")
        assert r.status_code == 200, letter.slug
        assert big_number(r.text, "recorded") == str(counts["recorded"])
        tables = Tables(r.text)
        for breakdown in ("kind", "body", "party", "country", "org_type"):
            rows = [(row[0], int(row[1])) for row in tables.tables[f"table-{breakdown}"]]
            assert rows == [(e["label"], e["count"]) for e in counts[f"by_{breakdown}"]], (
                letter.slug,
                breakdown,
            )
            ET.fromstring(anon.get(f"/v1/letters/{letter.slug}/charts/{breakdown}.svg").text)
        ET.fromstring(anon.get(f"/v1/letters/{letter.slug}/timeline.svg").text)
    campaign = anon.get("/campaigns/random")
    assert campaign.status_code == 200
    reach = anon.get("/v1/campaigns/random/reach").json()
    assert big_number(campaign.text, "distinct") == str(reach["distinct"])
    doc = anon.get("/v1/overlaps", params={"campaign": "random"}).json()
    tables = Tables(campaign.text)
    assert [int(row[2]) for row in tables.tables["table-pairs"]] == [p["common"] for p in doc["pairs"]]
    assert len(tables.tables["table-pairs"]) == 66
    assert [int(row[1]) for row in tables.tables["table-intersections"]] == [
        i["count"] for i in doc["intersections"]
    ]
    heat = ET.fromstring(anon.get("/v1/overlaps.svg", params={"campaign": "random"}).text)
    assert len([g for g in heat.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "cell"]) == 144
    for who in actors[:5]:
        assert anon.get(f"/actors/{who.id}").status_code == 200


def test_pages_make_a_fixed_number_of_queries(anon: TestClient, db: Session, engine: Engine) -> None:
    """No N+1: a page with ten times the rows makes the same number of queries."""
    commons, labour = b.body(db, "commons"), b.party(db, "labour")
    camp = b.campaign(db, "camp")

    def statements_for(n: int) -> dict[str, int]:
        letter = b.letter(db, f"letter-{n}", campaign=camp)
        first = None
        for i in range(n):
            who = b.actor(db, f"Person {n}-{i}", identifiers={"wikidata": f"Q{n}{i}"})
            b.membership(db, who, commons, labour, date(2019, 1, 1))
            b.sign(db, letter, who)
            first = first or who
        assert first is not None
        counted = {}
        for name, path in (
            ("letter", f"/letters/{letter.slug}"),
            ("actor", f"/actors/{first.id}"),
            ("index", "/"),
        ):
            seen: list[str] = []

            def count(*args: object, seen: list[str] = seen) -> None:
                seen.append(str(args[2]))

            event.listen(engine, "before_cursor_execute", count)
            try:
                assert anon.get(path).status_code == 200
            finally:
                event.remove(engine, "before_cursor_execute", count)
            counted[name] = len(seen)
        return counted

    assert statements_for(3) == statements_for(30)


def test_only_web_urls_are_links(anon: TestClient, db: Session) -> None:
    """The API refuses any URL but http(s) (tests/test_input_rules.py); rows written before it
    did may hold one, and the page still makes no link of it."""
    letter = b.letter(db, "a")
    db.add_all(
        [
            Source(letter_id=letter.id, label="Bad", url="javascript:alert(1)"),
            Source(letter_id=letter.id, label="Good", url="https://example.org/good"),
            Claim(letter_id=letter.id, count=3, url="javascript:alert(2)"),
            Event(letter_id=letter.id, date=date(2020, 9, 9), kind="other", url="javascript:alert(3)"),
        ]
    )
    db.flush()
    html = anon.get("/letters/a").text
    assert 'href="javascript:' not in html
    assert "javascript:alert(1)" in html and "javascript:alert(2)" in html and "javascript:alert(3)" in html
    assert '<a href="https://example.org/good" rel="nofollow noopener">Good</a>' in html
