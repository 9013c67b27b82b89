"""oEmbed: our widget and letter URLs get a `rich` document with an iframe; foreign URLs and
unknown letters are 404s; XML is 501; maxwidth/maxheight shrink the frame; ETag and 304."""

from __future__ import annotations

import re
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.config import Settings
from app.db.database import Database
from app.main import create_app
from tests import builders as b

OURS = "http://testserver/embed/letters/mps"


def test_our_widget_url_gets_a_rich_document(anon: TestClient, db: Session) -> None:
    b.letter(db, "mps", title='130 MPs & peers: "Close the camps" <now>')
    r = anon.get("/oembed", params={"url": OURS, "format": "json"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "public, max-age=60, stale-while-revalidate=600"
    doc = r.json()
    assert doc["version"] == "1.0"
    assert doc["type"] == "rich"
    assert doc["provider_name"] == "Undersigned"
    assert doc["provider_url"] == "http://testserver/"
    assert doc["title"] == '130 MPs & peers: "Close the camps" <now>'
    assert (doc["width"], doc["height"]) == (480, 300)
    assert doc["cache_age"] == 60
    html = doc["html"]
    assert html.startswith('<iframe src="http://testserver/embed/letters/mps" width="480" height="300" ')
    assert "<now>" not in html and "&lt;now&gt;" in html
    title = re.search(r'title="([^"]*)"', html)
    assert title is not None and unescape(title.group(1)).startswith('130 MPs & peers: "Close the camps"')
    # The iframe points at a widget this server really serves.
    assert anon.get("/embed/letters/mps").status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "http://testserver/letters/mps",
        "http://TESTSERVER:80/embed/letters/mps/",
        "http://testserver/embed/letters/mps?theme=dark",
    ],
)
def test_letter_pages_and_spellings_of_our_origin_are_ours(anon: TestClient, db: Session, url: str) -> None:
    b.letter(db, "mps")
    r = anon.get("/oembed", params={"url": url})
    assert r.status_code == 200, r.text
    assert 'src="http://testserver/embed/letters/mps' in r.json()["html"]
    if "theme=dark" in url:
        assert 'src="http://testserver/embed/letters/mps?theme=dark"' in r.json()["html"]


@pytest.mark.parametrize(
    "url",
    [
        "https://testserver/embed/letters/mps",  # another scheme
        "http://testserver:8080/embed/letters/mps",  # another port
        "http://evil.example/embed/letters/mps",  # another host
        "http://testserver/v1/letters/mps",  # ours, but not a widget
        "javascript:alert(1)",
        "not a url",
    ],
)
def test_foreign_urls_are_404_problems(anon: TestClient, db: Session, url: str) -> None:
    b.letter(db, "mps")
    r = anon.get("/oembed", params={"url": url})
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 404


def test_unknown_letter_is_404_and_xml_is_501(anon: TestClient, db: Session) -> None:
    b.letter(db, "mps")
    assert anon.get("/oembed", params={"url": "http://testserver/embed/letters/nope"}).status_code == 404
    r = anon.get("/oembed", params={"url": OURS, "format": "xml"})
    assert r.status_code == 501
    assert r.headers["content-type"] == "application/problem+json"
    assert anon.get("/oembed").status_code == 422
    assert anon.get("/oembed", params={"url": OURS, "format": "yaml"}).status_code == 422


def test_maxwidth_and_maxheight_are_honoured(anon: TestClient, db: Session) -> None:
    b.letter(db, "mps")
    doc = anon.get("/oembed", params={"url": OURS, "maxwidth": 320, "maxheight": 200}).json()
    assert (doc["width"], doc["height"]) == (320, 200)
    assert 'width="320" height="200"' in doc["html"]
    tiny = anon.get("/oembed", params={"url": OURS, "maxwidth": 100, "maxheight": 50}).json()
    assert (tiny["width"], tiny["height"]) == (100, 50)  # never more than asked
    big = anon.get("/oembed", params={"url": OURS, "maxwidth": 5000}).json()
    assert big["width"] == 480


def test_public_url_is_ours_too(settings: Settings, engine: Engine, db: Session) -> None:
    b.letter(db, "mps")
    db.commit()
    app = create_app(
        settings.model_copy(update={"public_url": "https://letters.example"}),
        database=Database(engine),
    )
    with TestClient(app) as anon:
        r = anon.get("/oembed", params={"url": "https://letters.example/embed/letters/mps"})
        assert r.status_code == 200, r.text
        assert r.json()["html"].startswith('<iframe src="https://letters.example/embed/letters/mps"')
        assert anon.get("/oembed", params={"url": OURS}).status_code == 200
        assert (
            anon.get("/oembed", params={"url": "https://other.example/embed/letters/mps"}).status_code == 404
        )


def test_etag_and_304(client: TestClient, db: Session) -> None:
    b.letter(db, "mps", title="Old title")
    db.commit()
    etag = client.get("/oembed", params={"url": OURS}).headers["etag"]
    assert client.get("/oembed", params={"url": OURS}, headers={"If-None-Match": etag}).status_code == 304
    assert client.patch("/v1/letters/mps", json={"title": "New title"}).status_code == 200
    r = client.get("/oembed", params={"url": OURS}, headers={"If-None-Match": etag})
    assert r.status_code == 200
    assert r.json()["title"] == "New title"
