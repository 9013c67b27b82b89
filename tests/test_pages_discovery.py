"""What the pages add for finding and sharing: the /letters, /campaigns and /actors indexes (paged,
searchable), the navigation to them, a letter page's unfurling tags (description, OpenGraph,
Twitter card, oEmbed discovery) and its card image, each signature's source link, and identifiers
linked to their public pages by scheme."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.identifiers import identifier_url
from app.models import Signature
from tests import builders as b

SVG = "{http://www.w3.org/2000/svg}"


class Head(HTMLParser):
    """The <meta> and <link> tags of a page, and every <a href> with its text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.meta: dict[str, str] = {}
        self.links: list[dict[str, str]] = []
        self.anchors: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "meta" and ("name" in a or "property" in a):
            self.meta[a.get("property") or a["name"]] = a.get("content", "")
        elif tag == "link":
            self.links.append(a)
        elif tag == "a" and "href" in a:
            self._href, self._text = a["href"], []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.anchors.append((self._href, "".join(self._text).strip()))
            self._href = None


def test_letter_page_unfurls(anon: TestClient, db: Session) -> None:
    row = b.letter(db, "to-the-ambassador", title='Letter "to" the <ambassador>', claimed=130)
    row.summary = "A cross-party letter on the treatment of the Uighurs."
    for i in range(6):
        b.sign(db, row, b.actor(db, f"MP {i}"))
    db.flush()
    html = anon.get("/letters/to-the-ambassador").text
    head = Head(html)
    page = "http://testserver/letters/to-the-ambassador"
    description = "6 signatures recorded, 130 claimed. A cross-party letter on the treatment of the Uighurs."
    assert head.meta["description"] == description
    assert head.meta["og:title"] == head.meta["twitter:title"] == 'Letter "to" the <ambassador>'
    assert head.meta["og:description"] == head.meta["twitter:description"] == description
    assert head.meta["og:url"] == page
    assert head.meta["og:type"] == "article"
    assert head.meta["og:image"] == head.meta["twitter:image"] == f"{page}/card.svg"
    assert head.meta["twitter:card"] == "summary_large_image"
    (oembed,) = [link for link in head.links if link.get("type") == "application/json+oembed"]
    assert oembed["rel"] == "alternate"
    found = urlsplit(oembed["href"])
    assert (found.scheme, found.netloc, found.path) == ("http", "testserver", "/oembed")
    assert parse_qs(found.query) == {"url": [page], "format": ["json"]}
    # the discovered oEmbed document and the card image answer
    document = anon.get(oembed["href"].removeprefix("http://testserver"))
    assert document.status_code == 200 and document.json()["title"] == 'Letter "to" the <ambassador>'
    card = anon.get(urlsplit(head.meta["og:image"]).path)
    assert card.status_code == 200 and card.headers["content-type"] == "image/svg+xml"
    assert card.headers["etag"]
    root = ET.fromstring(card.text)
    assert (root.get("width"), root.get("height")) == ("1200", "630")
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert "6" in texts and "130 claimed" in texts
    assert " ".join(texts).count("ambassador") == 1  # the title, escaped into the card
    assert (
        anon.get(
            "/letters/to-the-ambassador/card.svg", headers={"If-None-Match": card.headers["etag"]}
        ).status_code
        == 304
    )
    assert anon.get("/letters/nope/card.svg").status_code == 404


def test_signature_sources_link_only_web_urls(anon: TestClient, db: Session) -> None:
    row = b.letter(db, "l")
    web, hostile, bare = b.actor(db, "Web"), b.actor(db, "Hostile"), b.actor(db, "Bare")
    b.sign(db, row, web)
    b.sign(db, row, hostile)
    b.sign(db, row, bare)
    # Written straight to the database: the API refuses a javascript: URL on the way in.
    for actor, source in ((web, "https://news.example/list?page=2"), (hostile, "javascript:alert(1)")):
        db.query(Signature).filter(Signature.actor_id == actor.id).update({"source": source})
    db.flush()
    html = anon.get("/letters/l").text
    anchors = Head(html).anchors
    assert ("https://news.example/list?page=2", "news.example") in anchors
    assert not [href for href, _ in anchors if href.lower().startswith("javascript")]
    assert 'href="javascript' not in html.lower()
    assert "javascript:alert(1)" in html  # shown as text, not linked
    cells = re.findall(r'<td data-label="Source" class="source">(.*?)</td>', html, re.S)
    assert len(cells) == 3 and cells.count("") == 1


def test_identifiers_link_to_their_public_pages_by_scheme(anon: TestClient, db: Session) -> None:
    expected = {
        "ukparliament": ("4514", "https://members.parliament.uk/member/4514"),
        "theyworkforyou": ("25353", "https://www.theyworkforyou.com/mp/?p=25353"),
        "wikidata": ("Q42", "https://www.wikidata.org/wiki/Q42"),
        "website": ("https://www.example.org/about", "https://www.example.org/about"),
    }
    for scheme, (value, url) in expected.items():
        assert identifier_url(scheme, value) == url
    assert identifier_url("website", "javascript:alert(1)") is None
    assert identifier_url("wikidata", "not-an-item") is None
    assert identifier_url("opencorporates", "gb/123") is None
    row = b.letter(db, "l")
    mp = b.actor(db, "An MP", identifiers={s: v for s, (v, _) in expected.items()} | {"mnis": "7"})
    b.sign(db, row, mp)
    odd = b.actor(db, "Odd", identifiers={"website": "javascript:alert(1)"})  # (as an old row may hold)
    for page in (f"/actors/{mp.id}", "/letters/l"):
        hrefs = [href for href, _ in Head(anon.get(page).text).anchors]
        for _, url in expected.values():
            assert url in hrefs, (page, url)
        assert "mnis: 7" in anon.get(page).text
    odd_page = anon.get(f"/actors/{odd.id}").text
    assert "website: javascript:alert(1)" in odd_page and 'href="javascript' not in odd_page


def test_index_pages_page_and_search(anon: TestClient, db: Session) -> None:
    ours: set[str] = set()
    for i in range(53):
        b.campaign(db, f"campaign-{i:02d}", f"Campaign {i:02d}" + (" Xinjiang" if i % 10 == 0 else ""))
        made = b.actor(
            db,
            f"Person {i:02d}" + (" Uighur" if i % 10 == 0 else ""),
            kind="organisation" if i % 2 else "person",
        )
        ours.add(str(made.id))
    b.letter(db, "a-letter", title="A letter")

    def walk(path: str, row: str) -> list[str]:
        seen: list[str] = []
        url: str | None = path
        while url:
            r = anon.get(url)
            assert r.status_code == 200, r.text
            seen += re.findall(rf'<tr {row}="([^"]+)">', r.text)
            nxt = re.search(r'<a rel="next" href="([^"]+)"', r.text)
            url = nxt.group(1).replace("&amp;", "&") if nxt else None
        return seen

    # (live-server tests commit campaigns of their own into the session's database)
    campaigns = [slug for slug in walk("/campaigns", "data-slug") if slug.startswith("campaign-")]
    assert campaigns == [f"campaign-{i:02d}" for i in range(53)]  # two pages, no repeat
    assert walk("/campaigns?q=xinjiang", "data-slug") == [f"campaign-{i:02d}" for i in range(0, 53, 10)]
    actors = [i for i in walk("/actors", "data-id") if i in ours]
    assert len(actors) == len(set(actors)) == 53
    uighurs = walk("/actors?q=uighur", "data-id")
    assert len(uighurs) == 6
    people = walk("/actors?kind=person&q=person", "data-id")
    assert len(people) == 27
    assert "No one matches." in anon.get("/actors?q=nobody-at-all").text
    assert anon.get("/campaigns?cursor=garbage").status_code == 422
    letters = anon.get("/letters")
    assert letters.status_code == 200 and 'data-slug="a-letter"' in letters.text
    nav = re.search(r'<nav aria-label="Site">(.*?)</nav>', letters.text, re.S)
    assert nav is not None
    assert re.findall(r'href="([^"]+)"', nav.group(1))[:3] == ["/letters", "/campaigns", "/actors"]
