"""The API's documentation pages, `/docs` (Swagger UI) and `/redoc`, with every asset served by
this service: a reader offline or behind a firewall that blocks CDNs sees them as anyone else.

The assets (Swagger UI's bundle and stylesheet, ReDoc's standalone bundle, a favicon) come from
the `fastapi-offline` package, which ships the majors FastAPI's own pages take from a CDN
(Swagger UI 5, ReDoc 2); the pages are FastAPI's `get_swagger_ui_html` / `get_redoc_html`
pointed at them.

Each page carries its own Content-Security-Policy (the security-headers middleware keeps a
route's own policy): nothing from another origin, and of inline code only what the page itself
holds, by hash. ReDoc styles its components by injecting `<style>` elements at run time
(styled-components), which a hash cannot name, and builds its search index in a worker it makes
from a `blob:` URL, so `/redoc` alone allows inline styles and `blob:` workers; its scripts stay
this server's own. (ReDoc's sidebar credit shows a logo from its maker's CDN: refused, as any
other origin is, ReDoc hides it.)
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/static/docs"
ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"

router = APIRouter(include_in_schema=False)

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def assets() -> StaticFiles:
    return StaticFiles(directory=ASSETS_DIR)


def _script_hashes(html: str) -> str:
    """The CSP sources naming each inline `<script>` of `html` by its SHA-256."""
    digests = (hashlib.sha256(body.encode()).digest() for body in _INLINE_SCRIPT.findall(html))
    return " ".join(f"'sha256-{base64.b64encode(d).decode()}'" for d in digests)


def _policy(script_src: str, style_src: str, worker_src: str = "'none'") -> str:
    return (
        f"default-src 'none'; script-src {script_src}; style-src {style_src}; worker-src {worker_src}; "
        "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'self'"
    )


def _page(response: HTMLResponse, policy: str) -> HTMLResponse:
    response.headers["content-security-policy"] = policy
    response.headers["x-frame-options"] = "SAMEORIGIN"
    return response


def _urls(request: Request) -> tuple[str, str]:
    """The OpenAPI document's URL and the assets' base, both under the app's root path."""
    root = request.scope.get("root_path", "")
    return f"{root}{request.app.openapi_url}", f"{root}{ASSETS_URL}"


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    openapi_url, assets = _urls(request)
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{assets}/swagger-ui-bundle.js",
        swagger_css_url=f"{assets}/swagger-ui.css",
        swagger_favicon_url=f"{assets}/favicon.png",
    )
    html = bytes(page.body).decode()
    return _page(page, _policy(f"'self' {_script_hashes(html)}", "'self'"))


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    openapi_url, assets = _urls(request)
    page = get_redoc_html(
        openapi_url=openapi_url,
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{assets}/redoc.standalone.js",
        redoc_favicon_url=f"{assets}/favicon.png",
        with_google_fonts=False,
    )
    return _page(page, _policy("'self'", "'self' 'unsafe-inline'", "blob:"))
