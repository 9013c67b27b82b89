"""The API document and its pages: the bearer-key scheme and each operation's scope in OpenAPI,
the import's report as a schema, and `/docs` and `/redoc` served whole by this service — checked
in the HTML, in the assets' answers, and in headless Chromium with every other origin refused."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app import auth
from app.config import Settings
from app.imports.router import ImportReport
from app.main import create_app
from tests import builders as b
from tests.browser import ARTIFACTS
from tests.conftest import Keys
from tests.live import Live, live_server

SCHEME = {"BearerKey": {"type": "http", "scheme": "bearer"}}
GUARDS: dict[Callable[..., Any], str] = {auth._writer: "write", auth._admin: "admin"}
HTML_URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


def _scopes(dependant: Dependant | None) -> set[str]:
    if dependant is None:
        return set()
    own = {GUARDS[dependant.call]} if dependant.call in GUARDS else set()
    return own.union(*(_scopes(sub) for sub in dependant.dependencies))


def _needed(app: FastAPI) -> dict[tuple[str, str], str | None]:
    """(method, path) of each documented operation -> the scope its guard asks for, from the route
    table (not from the document under test)."""
    out: dict[tuple[str, str], str | None] = {}
    for context in iter_route_contexts(app.routes):
        if not getattr(context, "include_in_schema", False):
            continue
        scopes = _scopes(getattr(context, "dependant", None))
        needed = "admin" if "admin" in scopes else ("write" if scopes else None)
        for method in context.methods or ():
            out[(method.lower(), re.sub(r":\w+}", "}", str(context.path)))] = needed
    return out


def test_the_document_declares_the_bearer_key_scheme(anon: TestClient) -> None:
    schemes = anon.get("/openapi.json").json()["components"]["securitySchemes"]
    assert {
        name: {k: v for k, v in s.items() if k in ("type", "scheme")} for name, s in schemes.items()
    } == SCHEME
    assert "undersigned keys create" in schemes["BearerKey"]["description"]


def test_every_guarded_operation_lists_its_scope_and_reads_list_none(app: FastAPI, anon: TestClient) -> None:
    paths = anon.get("/openapi.json").json()["paths"]
    needed = _needed(app)
    documented = {(m, p) for p, ops in paths.items() for m in ops}
    assert documented == set(needed), "the walk and the document disagree on the operations"
    seen = {"write": 0, "admin": 0, None: 0}
    for (method, path), scope in needed.items():
        operation = paths[path][method]
        seen[scope] += 1
        if scope is None:
            assert "security" not in operation and "x-required-scope" not in operation, (method, path)
            continue
        assert operation["security"] == [{"BearerKey": [scope]}], (method, path)
        assert operation["x-required-scope"] == scope, (method, path)
        assert f"Needs an API key of scope `{scope}`" in operation["description"], (method, path)
        assert {"401", "403"} <= set(operation["responses"]), (method, path)
    # every write is guarded (tests/test_auth.py walks the routes for that too), every scope is used
    assert all(needed[(m, p)] for m, p in needed if m not in ("get", "head"))
    assert seen["write"] >= 20 and seen["admin"] >= 5 and seen[None] >= 30, seen
    assert paths["/v1/letters"]["get"].get("security") is None
    assert paths["/v1/letters/{slug}"]["delete"]["x-required-scope"] == "admin"
    assert paths["/v1/webhooks"]["get"]["x-required-scope"] == "admin"  # a guarded read


def test_keys_work_as_before_through_the_declared_scheme(
    anon: TestClient, client: TestClient, admin: TestClient, keys: Keys
) -> None:
    """What Swagger UI's Authorize sends (`Authorization: Bearer <key>`) writes; the refusals are
    still ours: problem+json, 401 with `WWW-Authenticate`, 403 for too small a scope."""
    body = {"slug": "via-scheme", "name": "Via scheme"}
    refused = anon.post("/v1/campaigns", json=body)
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.headers["www-authenticate"] == 'Bearer realm="undersigned"'
    assert "Authorization: Bearer <key>" in refused.json()["detail"]
    # the scheme's name is case-insensitive and spaces around the key are not part of it
    spaced = anon.post("/v1/campaigns", json=body, headers={"Authorization": f"bearer   {keys.write}  "})
    assert spaced.status_code == 201, spaced.text
    wrong_scope = client.delete("/v1/campaigns/via-scheme")
    assert wrong_scope.status_code == 403
    assert wrong_scope.headers["content-type"].startswith("application/problem+json")
    assert "'admin'" in wrong_scope.json()["detail"]
    # a body that does not parse: who has no key still learns that first
    assert (
        anon.post("/v1/campaigns", content=b"{", headers={"Content-Type": "application/json"}).status_code
        == 401
    )
    assert admin.delete("/v1/campaigns/via-scheme").status_code == 204


def test_the_import_answer_has_its_schema(anon: TestClient) -> None:
    spec = anon.get("/openapi.json").json()
    ok = spec["paths"]["/v1/letters/{slug}/signatures/import"]["post"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ImportReport"}
    schemas = spec["components"]["schemas"]
    report = schemas["ImportReport"]
    assert set(report["required"]) == {"dry_run", "summary", "rows"}
    assert report["properties"]["rows"]["items"] == {"$ref": "#/components/schemas/ImportRowReport"}
    row = schemas["ImportRowReport"]["properties"]
    assert row["status"]["enum"] == ["created", "matched", "duplicate", "ambiguous", "error"]
    assert {"actor", "method", "score", "candidates", "possible_matches", "error", "warning"} <= set(row)
    summary = schemas["ImportSummary"]
    assert set(summary["required"]) == {"rows", "created", "matched", "duplicate", "ambiguous", "error"}


def _as_documented(report: dict[str, Any]) -> None:
    """The answer is the schema's, field for field: read through the model, nothing is lost or
    changed (an undocumented field, a null where the schema has none, a wrong type all fail)."""
    assert ImportReport.model_validate(report, strict=True).model_dump(exclude_unset=True) == report


@pytest.fixture
def small_report(app: FastAPI, settings: Settings, keys: Keys) -> Iterator[TestClient]:
    bounded = create_app(
        Settings(database_url=settings.database_url, import_report_rows=1), database=app.state.database
    )
    with TestClient(bounded, headers={"Authorization": f"Bearer {keys.write}"}) as http:
        yield http


def test_real_import_answers_are_what_the_schema_says(
    client: TestClient, small_report: TestClient, db: Session
) -> None:
    b.letter(db, "l1")
    b.actor(db, "Human Rights Watch", kind="organisation", identifiers={"wikidata": "Q5"})
    b.actor(db, "Amnesty International", kind="organisation")
    for _ in range(2):
        b.actor(db, "Twin Trust", kind="organisation")
    db.commit()
    rows = (
        "name,wikidata\n"
        "HRW,Q5\n"  # matched by identifier
        "Amnesty Internationl,\n"  # matched fuzzily
        "Twin Trust,\n"  # ambiguous
        "New Org,\n"  # created
        "NEW ORG,\n"  # duplicate of the row before, with a warning
        "Amnesty Intl,\n"  # created, with possible matches
    )
    path = "/v1/letters/l1/signatures/import"
    headers = {"Content-Type": "text/csv"}
    dry = client.post(path, content=rows.encode(), headers=headers, params={"dry_run": "true"})
    assert dry.status_code == 200, dry.text
    _as_documented(dry.json())
    statuses = {row["status"] for row in dry.json()["rows"]}
    assert statuses == {"matched", "ambiguous", "created", "duplicate"}
    fields = set().union(*(row.keys() for row in dry.json()["rows"]))
    assert {"actor", "method", "score", "candidates", "possible_matches", "warning"} <= fields
    assert any(row.get("actor", {}).get("id", 0) is None for row in dry.json()["rows"])  # not made

    done = client.post(path, content=rows.encode(), headers=headers)
    assert done.status_code == 200, done.text
    _as_documented(done.json())
    assert all(row["actor"]["id"] for row in done.json()["rows"] if "actor" in row)

    bounded = small_report.post(path, content=rows.encode(), headers=headers, params={"dry_run": "true"})
    assert bounded.status_code == 200, bounded.text
    _as_documented(bounded.json())
    assert bounded.json()["rows_left_out"]

    # the 422 of an import with an error row carries the same report beside the problem's fields
    failed = client.post(path, content=(rows + "Bad,not-a-qid\n").encode(), headers=headers)
    assert failed.status_code == 422, failed.text
    problem = failed.json()
    assert {problem.pop(k) for k in ("type", "title", "status", "detail")}
    _as_documented(problem)
    assert problem["rows"][-1]["status"] == "error" and problem["rows"][-1]["error"]


def _same_origin_urls(html: str) -> list[str]:
    urls = HTML_URL.findall(html)
    assert urls, "the page references no asset"
    for url in urls:
        assert urlsplit(url).scheme == "" and urlsplit(url).netloc == "" and url.startswith("/"), url
    return urls


def _csp(response: Any) -> dict[str, list[str]]:
    policy = response.headers["content-security-policy"]
    directives = [part.strip().split() for part in policy.split(";") if part.strip()]
    return {d[0]: d[1:] for d in directives}


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


ASSET_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_doc_pages_load_everything_from_this_service(anon: TestClient, page: str) -> None:
    response = anon.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "cdn" not in html.lower() and "fonts.googleapis" not in html
    urls = _same_origin_urls(html)
    assert '"/openapi.json"' in html or "'/openapi.json'" in html
    for url in urls:
        asset = anon.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rindex(".") :]
        assert asset.headers["content-type"].split(";")[0] in ASSET_TYPES[suffix], (url, asset.headers)
        assert len(asset.content) > 500, url
    # the policy names no other origin; of inline scripts, only the page's own, by hash
    policy = _csp(response)
    assert policy["default-src"] == ["'none'"]
    for sources in policy.values():
        assert not any(re.match(r"^(https?:|\*|[a-z0-9.-]+\.[a-z]{2,})", s) for s in sources), policy
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    inline = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert sorted(s for s in policy["script-src"] if s.startswith("'sha256-")) == sorted(map(_sha256, inline))
    assert policy["frame-ancestors"] == ["'self'"]
    if page == "/docs":
        assert len(inline) == 1 and "SwaggerUIBundle" in inline[0]
        assert policy["style-src"] == ["'self'"] and policy["worker-src"] == ["'none'"]


def test_the_other_pages_keep_their_policy(anon: TestClient) -> None:
    """The doc pages' exceptions (inline styles and blob workers for ReDoc) are theirs alone."""
    for path in ("/", "/openapi.json"):
        response = anon.get(path)
        if response.headers["content-type"].startswith("text/html"):
            assert "'unsafe-inline'" not in response.headers["content-security-policy"]
            assert "blob:" not in response.headers["content-security-policy"]
    assert "'unsafe-inline'" in _csp(anon.get("/redoc"))["style-src"]


# ReDoc's sidebar credit ("API docs by Redocly") shows a logo from its maker's CDN; the policy
# refuses it (ReDoc then hides the image), which the browser reports on the console.
REDOC_LOGO_REFUSED = re.compile(
    r"^Loading the image 'https://cdn\.redoc\.ly/[^']+' violates .*Content Security Policy"
)


@pytest.fixture
def live(migrated_database_url: str) -> Iterator[Live]:
    with live_server(migrated_database_url, webhook_worker=False) as server:
        yield server


@pytest.mark.slow
def test_docs_and_redoc_work_in_a_browser_with_no_other_origin(browser: Any, live: Live) -> None:
    ours = urlsplit(live.base_url).netloc
    with live.client(auth=False) as c:
        spec = c.get("/openapi.json").json()
    operations = sum(len(ops) for ops in spec["paths"].values())

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    refused: list[str] = []
    errors: list[str] = []

    def only_ours(route: Any) -> None:
        if urlsplit(route.request.url).netloc != ours:
            refused.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", only_ours)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        page.goto(urljoin(live.base_url, "/docs"))
        page.locator(".opblock").first.wait_for(timeout=30_000)
        assert page.locator(".opblock").count() == operations
        authorize = page.locator(".auth-wrapper button.authorize")
        assert authorize.is_visible()
        # Authorize with the key, then "Try it out" on a write: the campaign is made
        authorize.click()
        dialog = page.locator(".dialog-ux .modal-ux")
        assert "BearerKey" in dialog.inner_text()
        dialog.locator("input").fill(live.key)
        dialog.locator("button.authorize").click()
        dialog.locator("button.btn-done").click()
        operation = page.locator("#operations-campaigns-create_campaign")
        operation.locator(".opblock-summary").click()
        operation.locator(".try-out__btn").click()
        operation.locator("textarea.body-param__text").fill(
            json.dumps({"slug": "from-docs", "name": "From docs"})
        )
        operation.locator("button.execute").click()
        status = operation.locator(".live-responses-table .response .response-col_status").first
        status.wait_for(timeout=30_000)
        assert status.inner_text().strip() == "201", operation.locator(".live-responses-table").inner_text()
        with live.client(auth=False) as c:
            assert c.get("/v1/campaigns/from-docs").json()["name"] == "From docs"
        page.screenshot(path=str(ARTIFACTS / "api-docs.png"))
        assert errors == []

        page.goto(urljoin(live.base_url, "/redoc"))
        heading = page.locator("h2", has_text="Bulk add signatures from CSV or a JSON array, matching actors")
        heading.wait_for(timeout=30_000)
        section = page.locator('[data-section-id="operation/import_signatures"]')
        assert "BearerKey" in section.inner_text()
        assert '"rows_left_out"' in section.inner_text()  # the report's schema, as a sample
        page.screenshot(path=str(ARTIFACTS / "api-redoc.png"))
        assert [e for e in errors if not REDOC_LOGO_REFUSED.match(e)] == []
        assert refused == []
    finally:
        context.close()
