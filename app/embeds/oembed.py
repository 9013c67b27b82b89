"""oEmbed 1.0 for the widget: which URLs are ours, and the `rich` document that embeds them.

"Ours" means the scheme, host and port of the request, or of the `PUBLIC_URL` setting (the
address people reach the service at behind a proxy). The widget URL (`/embed/letters/{slug}`)
and the letter's page (`/letters/{slug}`) are both accepted; anything else is not ours.
"""

from __future__ import annotations

import re
from html import escape
from urllib.parse import parse_qs, quote, unquote, urlsplit

from pydantic import BaseModel, Field

from app.embeds.widget import THEMES, widget_path

DEFAULT_WIDTH = 480
DEFAULT_HEIGHT = 300
MIN_WIDTH = 200
MIN_HEIGHT = 120
_PATH = re.compile(r"^/(?:embed/)?letters/([^/]+)/?$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class OEmbed(BaseModel):
    """An oEmbed 1.0 `rich` response (https://oembed.com/)."""

    version: str = Field(default="1.0")
    type: str = Field(default="rich")
    html: str = Field(description="An <iframe> of the widget.")
    width: int
    height: int
    title: str
    provider_name: str = Field(default="Undersigned")
    provider_url: str
    cache_age: int = Field(description="Seconds a consumer may cache this document.")


def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an absolute http(s) URL, ports made explicit; None otherwise."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def our_letter(url: str, bases: list[str]) -> tuple[str, str] | None:
    """(slug, theme) when `url` is a widget or letter page of one of `bases`; None otherwise."""
    where = origin(url)
    if where is None or where not in {origin(b) for b in bases}:
        return None
    parts = urlsplit(url.strip())
    match = _PATH.match(parts.path)
    if match is None:
        return None
    slug = unquote(match.group(1))
    theme = parse_qs(parts.query).get("theme", ["auto"])[0]
    return slug, theme if theme in THEMES else "auto"


def document(
    *,
    base: str,
    slug: str,
    title: str,
    theme: str,
    maxwidth: int | None,
    maxheight: int | None,
    cache_age: int,
) -> OEmbed:
    """The `rich` document: an iframe of the widget at the default size, or smaller when the
    consumer sets `maxwidth`/`maxheight` (never below a usable minimum)."""
    width = max(MIN_WIDTH, min(DEFAULT_WIDTH, maxwidth or DEFAULT_WIDTH))
    height = max(MIN_HEIGHT, min(DEFAULT_HEIGHT, maxheight or DEFAULT_HEIGHT))
    if maxwidth is not None:
        width = min(width, maxwidth)
    if maxheight is not None:
        height = min(height, maxheight)
    src = base.rstrip("/") + widget_path(slug) + (f"?theme={quote(theme)}" if theme != "auto" else "")
    html = (
        f'<iframe src="{escape(src)}" width="{width}" height="{height}" '
        f'title="{escape(title)} — signatures" style="border:0;max-width:100%" loading="lazy"></iframe>'
    )
    return OEmbed(
        html=html,
        width=width,
        height=height,
        title=title,
        provider_url=base.rstrip("/") + "/",
        cache_age=cache_age,
    )


def base_of(url: str) -> str:
    """`scheme://host[:port]` of an absolute URL, lower-cased, without a default port."""
    where = origin(url)
    if where is None:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    scheme, host, port = where
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" if port == _DEFAULT_PORTS[scheme] else f"{scheme}://{host}:{port}"
