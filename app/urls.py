"""Which URLs the registry takes and links to: `http` and `https` ones with a host, nothing else.

`url_problem` is the rule on the way in, for every URL a client or a file gives (a letter's
sources, claims and events, a signature's `source`, a `website` identifier, a webhook's target):
a `javascript:`, `data:`, `file:` or `mailto:` URL is refused with the field that holds it.
`web_url` is the same test on the way out: pages and embeds link only to what passes it, since
rows written before the rule was checked on input may still hold anything.
"""

from __future__ import annotations

from urllib.parse import urlsplit

WEB_SCHEMES = ("http", "https")
NOT_A_WEB_URL = "must be an http(s) URL with a host (https://example.org/)"


def url_problem(value: str) -> str | None:
    """Why `value` is not a URL the registry keeps, or None."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        return NOT_A_WEB_URL
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # a bracketed host that is no IPv6 address, a port that is no number
        return NOT_A_WEB_URL
    if parts.scheme.lower() not in WEB_SCHEMES or not host:
        return NOT_A_WEB_URL
    return None


def web_url(url: str | None) -> str | None:
    """`url` when a page may link to it, else None."""
    return url if url and url_problem(url) is None else None
