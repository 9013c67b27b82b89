"""The pages in headless Chromium, at a phone's width (375 px) and a laptop's (1280 px), over a
real server holding the demo data and a few letters written through the API: every page and
chart loads with no console error, no failed request and no request leaving the server, and a
screenshot of each is kept in artifacts/screenshots/ to be looked at."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.demo.loader import CAMPAIGN_SLUG, MPS_LETTER, UN_LETTER, load_demo
from tests.browser import ARTIFACTS, visit
from tests.conftest import make_database_url
from tests.live import Live, live_server

pytestmark = pytest.mark.slow

WIDTHS = (375, 1280)
HOSTILE = "<script>alert('x')</script> & \"quotes\""


def _write(live: Live) -> None:
    """A small campaign written through the API: two letters, an overlap, a withdrawal,
    events, a claim, a source, a recipient, and a hostile title."""
    with live.client() as c:

        def ok(response: Any) -> Any:  # (every write here makes something)
            assert response.status_code == 201, response.text
            return response.json()

        ok(c.post("/v1/campaigns", json={"slug": "browser-test", "name": f"Browser test {HOSTILE}"}))
        for slug, title, day in (
            ("browser-a", f"Letter A {HOSTILE}", "2021-03-01"),
            ("browser-b", "Letter B", "2021-03-05"),
        ):
            ok(
                c.post(
                    "/v1/letters",
                    json={
                        "slug": slug,
                        "title": title,
                        "published_on": day,
                        "claimed_signatory_count": 12,
                        "campaign": "browser-test",
                        "summary": f"Summary {HOSTILE}",
                    },
                )
            )
            ok(c.post(f"/v1/letters/{slug}/events", json={"date": day, "kind": "published", "note": HOSTILE}))
            ok(c.post(f"/v1/letters/{slug}/claims", json={"count": 12, "wording": HOSTILE}))
            ok(c.post(f"/v1/letters/{slug}/sources", json={"label": HOSTILE, "url": "https://example.org/a"}))
            ok(
                c.post(
                    f"/v1/letters/{slug}/recipients",
                    json={"actor": {"kind": "person", "name": f"Recipient {HOSTILE}"}, "role": "to"},
                )
            )
        ids = []
        for i in range(8):
            actor = ok(
                c.post(
                    "/v1/actors",
                    json={
                        "kind": "organisation",
                        "name": f"Group {i} {HOSTILE}",
                        "country": "FR",
                        "org_type": "ngo",
                    },
                )
            )
            ids.append(actor["id"])
        for i, actor_id in enumerate(ids):
            ok(
                c.post(
                    "/v1/letters/browser-a/signatures",
                    json={"actor_id": actor_id, "signed_on": f"2021-03-0{1 + i % 4}"},
                )
            )
            if i % 2:
                ok(
                    c.post(
                        "/v1/letters/browser-b/signatures",
                        json={"actor_id": actor_id, "signed_on": "2021-03-06"},
                    )
                )
        withdrawn = c.delete(f"/v1/letters/browser-a/signatures/{ids[0]}?on=2021-03-07")
        assert withdrawn.status_code == 200, withdrawn.text


@pytest.fixture(scope="module")
def live(backend: str, migrated_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One server and its data for the module's tests, which only read."""
    where = tmp_path_factory.mktemp("browser")
    for url in make_database_url(backend, where, copy_of=migrated_template):
        with live_server(url) as server:
            with server.database.write_sessions() as session:
                assert isinstance(session, Session)
                load_demo(session)
                session.commit()
            _write(server)
            yield server


def test_every_page_and_chart_loads_cleanly_at_both_widths(browser: Any, live: Live, backend: str) -> None:
    with live.client(auth=False) as c:
        signatory = c.get(f"/v1/letters/{MPS_LETTER}/signatures").json()["items"][0]["actor"]["id"]
        recipient = c.get(f"/v1/letters/{MPS_LETTER}/recipients").json()["items"][0]["actor"]["id"]
        counts = {
            slug: c.get(f"/v1/letters/{slug}/counts").json() for slug in (MPS_LETTER, UN_LETTER, "browser-a")
        }
    pages = {
        "index": "/",
        "index-search": "/?q=uighur",
        "letter-mps": f"/letters/{MPS_LETTER}",
        "letter-un": f"/letters/{UN_LETTER}",
        "letter-api": "/letters/browser-a",
        "campaign-demo": f"/campaigns/{CAMPAIGN_SLUG}",
        "campaign-api": "/campaigns/browser-test",
        "actor-signatory": f"/actors/{signatory}",
        "actor-recipient": f"/actors/{recipient}",
    }
    seen = {}
    for name, path in pages.items():
        for width in WIDTHS:
            result = visit(browser, live.base_url + path, width=width, name=f"{backend}-{name}")
            assert result.status == 200, (path, width)
            assert result.console_errors == [], (path, width, result.console_errors)
            assert result.failed_requests == [], (path, width, result.failed_requests)
            assert result.outside_requests(live.base_url) == [], (path, width)
            assert result.screenshot is not None and result.screenshot.stat().st_size > 1000
            seen[(name, width)] = result
    # the numbers a reader sees are the API's
    for slug, page in ((MPS_LETTER, "letter-mps"), (UN_LETTER, "letter-un"), ("browser-a", "letter-api")):
        text = seen[(page, 1280)].text
        assert (
            f"{counts[slug]['recorded']}\nrecorded here" in text
            or f"{counts[slug]['recorded']} recorded here" in text
        )
    assert counts["browser-a"]["recorded"] == 7 and counts["browser-a"]["withdrawn"] == 1
    # the hostile text is shown as text, never run (no dialog, no console error above)
    assert HOSTILE in seen[("letter-api", 1280)].text


CHARTS = {
    "chart-party": f"/v1/letters/{MPS_LETTER}/charts/party.svg",
    "chart-body": f"/v1/letters/{MPS_LETTER}/charts/body.svg",
    "chart-country": f"/v1/letters/{UN_LETTER}/charts/country.svg",
    "chart-timeline": "/v1/letters/browser-a/timeline.svg",
    "chart-heatmap": f"/v1/overlaps.svg?campaign={CAMPAIGN_SLUG}",
    "chart-upset": "/v1/overlaps.svg?campaign=browser-test&chart=upset",
}


def test_charts_alone_render_as_svg_documents(browser: Any, live: Live, backend: str) -> None:
    """Each chart URL opened by itself is an SVG document Chromium renders without error."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name, path in CHARTS.items():
        context = browser.new_context(viewport={"width": 700, "height": 600})
        page = context.new_page()
        errors: list[str] = []
        requests: list[str] = []
        page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
        page.on("request", lambda r, requests=requests: requests.append(r.url))
        try:
            response = page.goto(live.base_url + path, wait_until="networkidle", timeout=20_000)
            assert response is not None and response.status == 200, path
            assert response.headers["content-type"].startswith("image/svg+xml")
            assert page.evaluate("document.documentElement.localName") == "svg"
            assert page.evaluate("document.querySelector('title').textContent")
            assert page.evaluate("document.querySelector('desc').textContent")
            page.screenshot(path=str(ARTIFACTS / f"{backend}-{name}.png"))
        finally:
            context.close()
        assert errors == [], (path, errors)
        assert set(requests) <= {live.base_url + path, live.base_url + "/favicon.ico"}, requests


# The rendered size of every chart label: its font size times the scale its SVG is drawn at.
RENDERED_LABEL_SIZES = """() => Array.from(document.querySelectorAll('figure.chart svg text'))
  .filter((t) => t.getClientRects().length > 0 && t.textContent.trim() !== '')
  .map((t) => [t.textContent, parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a])"""


def test_at_375_px_chart_labels_are_legible_and_nothing_overflows(browser: Any, live: Live) -> None:
    """On a phone the charts' labels render at 11 px or more, and neither the signatories'
    table (stacked) nor anything else makes the page wider than the screen."""
    with live.client(auth=False) as c:
        signatory = c.get(f"/v1/letters/{MPS_LETTER}/signatures").json()["items"][0]["actor"]["id"]
    paths = [
        f"/letters/{MPS_LETTER}",
        f"/letters/{UN_LETTER}",
        "/letters/browser-a",
        f"/campaigns/{CAMPAIGN_SLUG}",
        "/campaigns/browser-test",
        "/letters",
        "/campaigns",
        "/actors",
        f"/actors/{signatory}",
    ]
    for path in paths:
        context = browser.new_context(viewport={"width": 375, "height": 800})
        page = context.new_page()
        try:
            response = page.goto(live.base_url + path, wait_until="networkidle", timeout=20_000)
            assert response is not None and response.status == 200, path
            sizes = page.evaluate(RENDERED_LABEL_SIZES)
            if path.startswith(("/letters/", "/campaigns/")):
                assert len(sizes) > 10, path  # the charts are there and measured
            small = [(text, round(size, 2)) for text, size in sizes if size < 11 - 0.01]
            assert small == [], (path, small)
            width = page.evaluate("document.scrollingElement.scrollWidth")
            assert width <= 375, (path, width)
            if path == f"/letters/{MPS_LETTER}":
                table = page.evaluate(
                    "(() => { const t = document.getElementById('signatory-table');"
                    " return [t.getBoundingClientRect().right, t.scrollWidth, t.clientWidth]; })()"
                )
                assert table[0] <= 375 and table[1] <= table[2] + 1, table
        finally:
            context.close()
