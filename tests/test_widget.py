"""The widget: count, claim, bar, sources, escaping, no external assets, CSP that lets it live
in an iframe; and the real thing in headless Chromium at 320 and 1280 px against a live server."""

from __future__ import annotations

import re
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Source
from tests import builders as b
from tests.browser import visit
from tests.live import live_server

XSS = "<img src=x onerror=alert(1)>"


def parliament_letter(db: Session, slug: str = "mps", *, title: str = "Letter to the ambassador") -> None:
    """7 signatures: 3 Labour, 2 Conservative, 1 each of five more parties (top 5 + Other), 1 unknown."""
    row = b.letter(db, slug, title=title, claimed=130)
    commons = b.body(db, f"commons-{slug}", "House of Commons")
    parties = {
        p: b.party(db, p, p.replace("-", " ").title())
        for p in ("labour", "conservative", "green-party", "plaid-cymru", "bishops", "crossbench")
    }
    plan = ["labour"] * 3 + ["conservative"] * 2 + ["green-party", "plaid-cymru", "bishops", "crossbench"]
    for i, party in enumerate(plan):
        who = b.actor(db, f"Member {slug} {i}")
        b.membership(db, who, commons, parties[party], date(2019, 12, 12))
        b.sign(db, row, who)
    db.add(Source(letter_id=row.id, label="The letter (PDF)", url="https://example.org/letter.pdf"))
    db.add(Source(letter_id=row.id, label="bad", url="javascript:alert(1)"))
    db.flush()


def assets_and_links(html: str) -> tuple[list[str], list[str]]:
    srcs = re.findall(r"""\bsrc\s*=\s*["']?([^"'\s>]+)""", html, flags=re.I)
    hrefs = re.findall(r"""\bhref\s*=\s*["']?([^"'\s>]+)""", html, flags=re.I)
    return srcs, hrefs


def test_widget_shows_title_count_claim_bar_day_and_sources(anon: TestClient, db: Session) -> None:
    parliament_letter(db)
    r = anon.get("/embed/letters/mps")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    html = r.text
    assert (
        '<h1><a class="letter" href="/letters/mps" target="_blank" rel="noopener">'
        "Letter to the ambassador</a></h1>" in html
    )
    assert '<strong id="u-recorded">9</strong>' in html
    assert "130 claimed · 9 recorded here" in html
    assert f'datetime="{date.today().isoformat()}"' in html
    # The bar is by party (known here): the five biggest, then Other with the rest.
    legend = re.findall(r'<span class="sw"[^>]*></span>([^<]+)</li>', html)
    assert legend == ["Labour 3", "Conservative 2", "Bishops 1", "Crossbench 1", "Green Party 1", "Other 1"]
    widths = [float(w) for w in re.findall(r'class="seg" style="width:([\d.]+)%', html)]
    assert sum(widths) == pytest.approx(100, abs=0.01)
    assert widths[0] == pytest.approx(100 * 3 / 9, abs=0.01)
    assert "#e4003b" in html  # Labour's red
    # Sources: http(s) links open in a new tab; a javascript: URL never becomes a link.
    assert (
        '<a href="https://example.org/letter.pdf" target="_blank" rel="noopener noreferrer">'
        "The letter (PDF)</a>" in html
    )
    assert "javascript:" not in html


def test_bar_by_kind_when_no_party_is_known(anon: TestClient, db: Session) -> None:
    row = b.letter(db, "ngos", claimed=3)
    for i in range(2):
        b.sign(db, row, b.actor(db, f"NGO {i}", kind="organisation"))
    b.sign(db, row, b.actor(db, "A person"))
    html = anon.get("/embed/letters/ngos").text
    assert re.findall(r'<span class="sw"[^>]*></span>([^<]+)</li>', html) == ["Organisation 2", "Person 1"]
    # Claimed equals recorded: no claim sentence.
    assert '<p class="claim" id="u-claim"></p>' in html


def test_every_user_text_is_escaped(anon: TestClient, db: Session) -> None:
    row = b.letter(db, "xss", title=XSS)
    db.add(Source(letter_id=row.id, label=XSS, url='https://example.org/"><script>alert(1)</script>'))
    who = b.actor(db, "Someone")
    b.membership(db, who, b.body(db, "xss-body"), b.party(db, "xss-party", XSS), date(2019, 1, 1))
    b.sign(db, row, who)
    db.flush()
    html = anon.get("/embed/letters/xss").text
    assert XSS not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script>alert(1)" not in html
    assert html.count("<script>") == 1  # ours, and only ours
    assert "<img" not in html


def test_no_external_assets_and_a_csp_that_allows_framing(anon: TestClient, db: Session) -> None:
    parliament_letter(db)
    r = anon.get("/embed/letters/mps", params={"theme": "dark"})
    html = r.text
    srcs, hrefs = assets_and_links(html)
    assert srcs == []
    # One <link>: an empty icon from a data: URL, so the browser asks nobody for a favicon.
    assert re.findall(r"<link[^>]*>", html, flags=re.I) == ['<link rel="icon" href="data:,">']
    assert "@import" not in html and "url(" not in html
    assert "<script src" not in html.lower()
    # The only links are the letter's page and its sources, opened in a new tab; nothing is
    # loaded from them.
    assert hrefs == ["data:,", "/letters/mps", "https://example.org/letter.pdf", "/letters/mps#signatories"]
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "connect-src 'self'" in csp
    assert "frame-ancestors *" in csp
    assert "x-frame-options" not in r.headers
    assert '<html lang="en" data-theme="dark">' in html
    assert '<html lang="en" data-theme="light">' in anon.get("/embed/letters/mps?theme=light").text
    assert anon.get("/embed/letters/mps?theme=neon").status_code == 422
    assert anon.get("/embed/letters/nope").status_code == 404


def test_widget_etag_and_304(client: TestClient, db: Session) -> None:
    parliament_letter(db)
    extra = b.actor(db, "Late")
    db.commit()
    r = client.get("/embed/letters/mps")
    assert r.headers["cache-control"] == "public, max-age=60, stale-while-revalidate=600"
    etag = r.headers["etag"]
    cached = client.get("/embed/letters/mps", headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert client.get("/embed/letters/mps?theme=dark", headers={"If-None-Match": etag}).status_code == 200
    assert client.post("/v1/letters/mps/signatures", json={"actor_id": extra.id}).status_code == 201
    fresh = client.get("/embed/letters/mps", headers={"If-None-Match": etag})
    assert fresh.status_code == 200
    assert '<strong id="u-recorded">10</strong>' in fresh.text


# --- in a real browser -----------------------------------------------------------------------


@pytest.mark.parametrize(("width", "theme"), [(320, "auto"), (1280, "auto"), (320, "dark")])
def test_widget_in_headless_chromium(
    browser: Any, migrated_database_url: str, width: int, theme: str
) -> None:
    with live_server(migrated_database_url) as live:
        with Session(live.database.engine) as db:
            parliament_letter(db, title="Letter to the ambassador <of> China & co")
            db.commit()
        url = f"{live.base_url}/embed/letters/mps" + ("" if theme == "auto" else f"?theme={theme}")
        shot = visit(browser, url, width=width, name="widget" if theme == "auto" else f"widget-{theme}")
    assert shot.status == 200
    assert shot.console_errors == []
    assert shot.failed_requests == []
    assert shot.outside_requests(live.base_url) == []
    assert all(urlsplit(u).netloc == urlsplit(live.base_url).netloc for u in shot.requests)
    # The page itself, then its live stream from the same server: nothing else.
    assert [urlsplit(u).path for u in shot.requests] == [
        "/embed/letters/mps",
        "/v1/letters/mps/counts/stream",
    ]
    assert "Letter to the ambassador <of> China & co" in shot.text
    assert "9" in shot.text.split()
    assert "130 claimed · 9 recorded here" in shot.text
    assert shot.screenshot is not None and shot.screenshot.stat().st_size > 1000


def test_widget_goes_live_in_chromium(browser: Any, migrated_database_url: str) -> None:
    """Open the widget, add a signature through the API, and watch the number change in place."""
    with live_server(migrated_database_url, sse_poll_seconds=0.2) as live:
        with Session(live.database.engine) as db:
            parliament_letter(db)
            late = b.actor(db, "Late Signatory")
            db.commit()
            late_id = late.id
        context = browser.new_context(viewport={"width": 480, "height": 400})
        page = context.new_page()
        # Count the widget's draws: the stream's events redraw the bar (the page comes drawn).
        page.add_init_script(
            "window.draws = 0; document.addEventListener('DOMContentLoaded', () => new MutationObserver("
            "() => { window.draws += 1; }).observe(document.getElementById('u-bar'), {childList: true}));"
        )
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        try:
            with page.expect_request(lambda r: r.url.endswith("/counts/stream"), timeout=10_000):
                page.goto(f"{live.base_url}/embed/letters/mps", wait_until="load")
            page.wait_for_function("() => window.draws > 0", timeout=10_000)  # the stream's first event
            assert page.inner_text("#u-recorded") == "9"
            with live.client() as api:
                r = api.post("/v1/letters/mps/signatures", json={"actor_id": late_id})
                assert r.status_code == 201, r.text
            page.wait_for_function(
                "() => document.getElementById('u-recorded').textContent === '10'", timeout=10_000
            )
            assert "130 claimed · 10 recorded here" in page.inner_text("#u-claim")
            assert "Other 2" in page.inner_text("#u-legend")
        finally:
            context.close()
    assert errors == []


def test_many_sources_are_cut_to_three_and_counted(anon: TestClient, db: Session) -> None:
    row = b.letter(db, "many")
    for i in range(5):
        db.add(Source(letter_id=row.id, label=f"Source {i}", url=f"https://example.org/{i}"))
    db.flush()
    html = anon.get("/embed/letters/many").text
    assert assets_and_links(html)[1] == [
        "data:,",
        "/letters/many",
        *(f"https://example.org/{i}" for i in range(3)),
        "/letters/many#sources",
        "/letters/many#signatories",
    ]
    assert ">2 more</a></li>" in html
