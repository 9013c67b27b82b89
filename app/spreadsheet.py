"""CSV meant for spreadsheets is safe to open: a cell that begins with `=`, `+`, `-`, `@`, a
tab or a carriage return is a formula to Excel, LibreOffice and Google Sheets (a signatory
named `=HYPERLINK(...)` would run as one), so such a text cell gets a leading `'` (OWASP's
advice), which spreadsheets show as text and do not display.

Which CSV is which (docs/security.md):
- for spreadsheets, escaped here: every `?format=csv` answer of the API (every list through
  `app.formats`, the signatures' own export, the changes feed) — people open these;
- for machines, exact: the registry dump of `undersigned export DIR`, which
  `undersigned import DIR` loads back value for value (moving SQLite to PostgreSQL must not
  change a name), and the NDJSON and JSON answers.

The import endpoint (and `undersigned import-signatures`) reads a CSV cell `'` + one of those
characters back as the text without the `'`, so an API export imports back as it was.
"""

from __future__ import annotations

from typing import Any

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """A text value that a spreadsheet would take for a formula, prefixed with `'`; any other
    value (numbers, dates, plain text) as it is."""
    if isinstance(value, str) and value.startswith(TRIGGERS):
        return "'" + value
    return value


def safe_row(values: Any) -> list[Any]:
    return [safe_cell(v) for v in values]


def unescape_cell(value: str) -> str:
    """The inverse of `safe_cell` for text read from a CSV."""
    if value.startswith("'") and value[1:2] and value[1:].startswith(TRIGGERS):
        return value[1:]
    return value
