"""The SVG badge: content type, well-formed SVG with the count, label and style, big numbers,
escaping; ETag and 304 before and after a write; Cache-Control and CORS."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.demo.loader import load_demo
from app.embeds.badge import COUNT_MODES, format_count, render_badge, text_width
from tests import builders as b

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text") if t.get("aria-hidden") != "true"]


def letter_with(db: Session, slug: str, n: int, **kwargs: object) -> None:
    row = b.letter(db, slug, **kwargs)  # type: ignore[arg-type]
    for i in range(n):
        b.sign(db, row, b.actor(db, f"Person {slug} {i}"))


def test_badge_is_an_accessible_svg_with_the_count(anon: TestClient, db: Session) -> None:
    letter_with(db, "three", 3, claimed=130)
    r = anon.get("/v1/letters/three/badge.svg")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/svg+xml"
    assert r.headers["cache-control"] == "public, max-age=60, stale-while-revalidate=600"
    root = parse(r.text)
    assert texts(root) == ["signatures", "3"]
    assert root.get("role") == "img"
    assert root.get("aria-label") == "signatures: 3"
    assert root.findtext(f"{SVG}title") == "signatures: 3"
    width = float(root.get("width") or 0)
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    assert width > text_width("signatures3")


def test_label_and_styles(anon: TestClient, db: Session) -> None:
    letter_with(db, "l", 1)
    heights = {}
    for style in ("flat", "flat-square", "plastic"):
        r = anon.get("/v1/letters/l/badge.svg", params={"label": "MPs & peers", "style": style})
        assert r.status_code == 200, r.text
        root = parse(r.text)
        assert texts(root) == ["MPs & peers", "1"]
        heights[style] = root.get("height")
        rx = root.find(f"{SVG}clipPath/{SVG}rect")
        assert rx is not None
        assert (rx.get("rx") == "0") == (style == "flat-square")
    assert heights == {"flat": "20", "flat-square": "20", "plastic": "18"}
    assert anon.get("/v1/letters/l/badge.svg", params={"style": "neon"}).status_code == 422
    assert anon.get("/v1/letters/l/badge.svg", params={"label": "x" * 41}).status_code == 422
    assert anon.get("/v1/letters/l/badge.svg", params={"label": ""}).status_code == 422


def test_unknown_letter_is_a_404_problem(anon: TestClient) -> None:
    r = anon.get("/v1/letters/nope/badge.svg")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


def test_label_is_escaped(anon: TestClient, db: Session) -> None:
    letter_with(db, "l", 0)
    label = "<script>alert(1)</script>\x01"
    r = anon.get("/v1/letters/l/badge.svg", params={"label": label})
    assert r.status_code == 200
    assert "<script" not in r.text
    root = parse(r.text)  # still well-formed: escaped, control character dropped
    assert texts(root)[0] == "<script>alert(1)</script>"
    assert list(root.iter(f"{SVG}script")) == []


@pytest.mark.parametrize("count", [0, 7, 1_234, 1_234_567, 98_765_432])
def test_any_count_fits_its_box(count: int) -> None:
    root = parse(render_badge("signatures", format_count(count)))
    value = f"{count:,}"
    assert texts(root)[1] == value
    rects = root.findall(f"{SVG}g/{SVG}rect")
    label_box, value_box = (float(r.get("width") or 0) for r in rects[:2])
    text_lengths = [
        float(t.get("textLength") or 0) for t in root.iter(f"{SVG}text") if not t.get("aria-hidden")
    ]
    # Each text is held to its measured length, and that length leaves padding in its box.
    assert text_lengths[1] == pytest.approx(text_width(value), abs=0.1)
    assert value_box >= text_lengths[1] + 10
    assert label_box >= text_lengths[0] + 10
    assert float(root.get("width") or 0) == label_box + value_box
    # Wider numbers make wider boxes: seven digits and two commas are at least 7 * 7 px of digits.
    if count >= 1_000_000:
        assert value_box >= 7 * 7 + 2 * 3.5


def test_etag_and_304_before_and_after_a_write(client: TestClient, db: Session) -> None:
    letter_with(db, "l", 2)
    extra = b.actor(db, "Late Signatory")
    db.commit()
    first = client.get("/v1/letters/l/badge.svg")
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    again = client.get("/v1/letters/l/badge.svg", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == "public, max-age=60, stale-while-revalidate=600"
    # Another rendering has another validator.
    other = client.get(
        "/v1/letters/l/badge.svg", params={"style": "plastic"}, headers={"If-None-Match": etag}
    )
    assert other.status_code == 200
    assert other.headers["etag"] != etag

    assert client.post("/v1/letters/l/signatures", json={"actor_id": extra.id}).status_code == 201
    after = client.get("/v1/letters/l/badge.svg", headers={"If-None-Match": etag})
    assert after.status_code == 200
    assert texts(parse(after.text))[1] == "3"
    assert after.headers["etag"] != etag
    assert (
        client.get("/v1/letters/l/badge.svg", headers={"If-None-Match": after.headers["etag"]}).status_code
        == 304
    )


def test_cors_is_open_for_reads(anon: TestClient, db: Session) -> None:
    letter_with(db, "l", 1)
    origin = {"Origin": "https://news.example"}
    for path in ("/v1/letters/l/badge.svg", "/v1/letters/l/counts", "/embed/letters/l"):
        r = anon.get(path, headers=origin)
        assert r.status_code == 200, path
        assert r.headers["access-control-allow-origin"] == "*", path
        assert "ETag" in r.headers["access-control-expose-headers"]
    etag = anon.get("/v1/letters/l/badge.svg").headers["etag"]
    not_modified = anon.get("/v1/letters/l/badge.svg", headers={**origin, "If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.headers["access-control-allow-origin"] == "*"


def test_counts_answer_304_from_the_letter_version(client: TestClient, db: Session) -> None:
    """`GET …/counts` uses the same cheap validator as the badge (shared in app.http.validators)."""
    letter_with(db, "l", 2)
    extra = b.actor(db, "Late Signatory")
    db.commit()
    r = client.get("/v1/letters/l/counts")
    etag = r.headers["etag"]
    assert r.headers["cache-control"] == "public, max-age=60, stale-while-revalidate=600"
    cached = client.get("/v1/letters/l/counts", headers={"If-None-Match": etag})
    assert (cached.status_code, cached.headers["etag"]) == (304, etag)
    as_csv = client.get("/v1/letters/l/counts", params={"format": "csv"}, headers={"If-None-Match": etag})
    assert as_csv.status_code == 200 and as_csv.headers["etag"] != etag
    earlier = client.get(
        "/v1/letters/l/counts", params={"as_of": "2020-01-01"}, headers={"If-None-Match": etag}
    )
    assert earlier.status_code == 200 and earlier.json()["recorded"] == 0
    assert client.post("/v1/letters/l/signatures", json={"actor_id": extra.id}).status_code == 201
    fresh = client.get("/v1/letters/l/counts", headers={"If-None-Match": etag})
    assert fresh.status_code == 200
    assert fresh.json()["recorded"] == 3
    assert (
        client.get("/v1/letters/l/counts", headers={"If-None-Match": fresh.headers["etag"]}).status_code
        == 304
    )


def test_counts_as_of_today_and_as_of_unset_are_different_documents(anon: TestClient, db: Session) -> None:
    letter_with(db, "l", 1)
    unset = anon.get("/v1/letters/l/counts")
    today = anon.get("/v1/letters/l/counts", params={"as_of": date.today().isoformat()})
    assert unset.json()["as_of"] is None
    assert today.json()["as_of"] == date.today().isoformat()
    assert unset.headers["etag"] != today.headers["etag"]


def test_count_modes_say_recorded_claimed_or_both(anon: TestClient, db: Session) -> None:
    letter_with(db, "claimed", 6, claimed=1300)
    letter_with(db, "unclaimed", 2)
    said = {}
    for slug in ("claimed", "unclaimed"):
        for mode in (None, "recorded", "claimed", "both"):
            r = anon.get(f"/v1/letters/{slug}/badge.svg", params={"count": mode} if mode else {})
            assert r.status_code == 200, r.text
            root = parse(r.text)
            value = texts(root)[1]
            assert root.get("aria-label") == f"signatures: {value}"
            said[(slug, mode)] = value
    assert said == {
        ("claimed", None): "6",
        ("claimed", "recorded"): "6",
        ("claimed", "claimed"): "1,300 claimed",
        ("claimed", "both"): "6 of 1,300 claimed",
        ("unclaimed", None): "2",
        ("unclaimed", "recorded"): "2",
        ("unclaimed", "claimed"): "no claim",
        ("unclaimed", "both"): "2, no claim",
    }
    bad = anon.get("/v1/letters/claimed/badge.svg", params={"count": "signed"})
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert "count" in bad.text
    # each mode is its own rendering, with its own validator
    etags = {
        anon.get("/v1/letters/claimed/badge.svg", params={"count": m}).headers["etag"] for m in COUNT_MODES
    }
    assert len(etags) == 3


def test_the_documented_badge_is_what_the_badge_draws(anon: TestClient, db: Session) -> None:
    """docs/embeds.md shows badge URLs of the demo letter, each followed by what it draws
    ('draws "LABEL | VALUE"'): each URL, asked of a registry holding the demo, draws that text."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "embeds.md").read_text(encoding="utf-8")
    documented = re.findall(r"```\w*\n(.*?)```\s*draws \"([^\"|]+) \| ([^\"]+)\"", text, re.S)
    assert len(documented) >= 2
    assert load_demo(db)
    db.commit()
    for block, label, value in documented:
        url = re.search(r"https://undersigned\.example(/v1/letters/[^\s\")]+/badge\.svg[^\s\")]*)", block)
        assert url is not None, block
        r = anon.get(html.unescape(url.group(1)))
        assert r.status_code == 200, (url.group(1), r.text)
        assert texts(parse(r.text)) == [label, value], url.group(1)
    assert any("count=both" in block for block, _, _ in documented)
