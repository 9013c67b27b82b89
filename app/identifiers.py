"""What an actor's identifier may hold, scheme by scheme: the one rule for the API, the import
rows and the dump loader.

`identifier_url` is where a known identifier's public page is (the pages link an actor's
identifiers there): the one table of those addresses.

Known schemes have a shape (a Wikidata item is `Q` and digits; the UK Parliament's member ids
and TheyWorkForYou's person ids are digits; a website is an http(s) URL with a host); any other
scheme is free-form, named in `[a-z0-9_-]+`. A wrong shape would never match the same actor
from another source, so it is refused where it comes in.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from app.urls import url_problem, web_url

SCHEME = re.compile(r"^[a-z0-9_-]+$")
MAX_SCHEME = 50
MAX_VALUE = 500

_DIGITS = re.compile(r"[0-9]{1,20}")
SHAPES: dict[str, tuple[re.Pattern[str], str]] = {
    "wikidata": (re.compile(r"Q[0-9]{1,20}"), "a Wikidata item: Q followed by digits (Q42)"),
    "ukparliament": (_DIGITS, "a UK Parliament member id: digits"),
    "theyworkforyou": (_DIGITS, "a TheyWorkForYou person id: digits"),
}


def identifier_problem(scheme: str, value: str) -> str | None:
    """Why `scheme:value` is not an identifier, or None."""
    if not SCHEME.match(scheme):
        return f"the scheme {scheme[:MAX_SCHEME]!r} must be lower-case letters, digits, '_' or '-'"
    if len(scheme) > MAX_SCHEME:
        return f"the scheme {scheme[:MAX_SCHEME]!r}… is longer than {MAX_SCHEME} characters"
    if not value:
        return f"{scheme}: the value is empty"
    if len(value) > MAX_VALUE:
        return f"{scheme}: longer than {MAX_VALUE} characters"
    if "\x00" in value:
        return f"{scheme}: holds a NUL character"
    if scheme == "website":
        problem = url_problem(value)
        return None if problem is None else f"website: {problem}"
    shape = SHAPES.get(scheme)
    if shape is not None and not shape[0].fullmatch(value):
        return f"{scheme}: {value[:60]!r} is not {shape[1]}"
    return None


# The public page of an identifier, by scheme ({} is the value, already checked for its shape).
PAGES: dict[str, str] = {
    "ukparliament": "https://members.parliament.uk/member/{}",
    "theyworkforyou": "https://www.theyworkforyou.com/mp/?p={}",
    "wikidata": "https://www.wikidata.org/wiki/{}",
}


def identifier_url(scheme: str, value: str) -> str | None:
    """The public page of `scheme:value` (a website is its own page), or None for a scheme
    with no known page or a value without the scheme's shape (a row stored before the shape
    was checked is shown, never linked)."""
    if scheme == "website":
        return web_url(value)
    page = PAGES.get(scheme)
    if page is None or identifier_problem(scheme, value) is not None:
        return None
    return page.format(quote(value, safe=""))
