"""Reading an import body (CSV or a JSON array) into rows, and checking each row's fields.

Rules (SPEC §4): `row` is the 1-based data row (the CSV header is not a row); an empty field is
null; missing trailing fields are empty; a row with more fields than the header, or one the CSV
reader cannot tokenise (a stray quote), is an `error` row. The body is UTF-8 (a BOM is accepted)
unless its Content-Type names another charset (`text/csv; charset=windows-1252`, `utf-16`: what
spreadsheets save). A body not in its charset, one that holds NUL bytes, or one that is not a
JSON array is refused whole (`Invalid`, 422) with the place it broke. Unknown columns are
ignored, so a signatures export (`actor_id`, …) reads back.

Identifier columns: `wikidata`, `ukparliament`, `theyworkforyou`, `website`, `twitter`,
`opencorporates` (the column name is the scheme), plus `identifiers` as `scheme:value;scheme:value`
for any other scheme.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.countries import NOT_A_COUNTRY, country_code
from app.dates import window_problem
from app.errors import Invalid
from app.identifiers import SCHEME, identifier_problem
from app.limits import json_depth_over
from app.schemas import MAX_INT
from app.spreadsheet import unescape_cell
from app.urls import url_problem
from app.vocabulary import ACTOR_KINDS, ORG_TYPES, SIGNATURE_STATUSES, spelled

IDENTIFIER_COLUMNS = ("wikidata", "ukparliament", "theyworkforyou", "website", "twitter", "opencorporates")
MAX_TEXT = 1000

Record = dict[str, str | None]


@dataclass(slots=True)
class RawRow:
    """One data row as read: its fields by column, or why it could not be read."""

    row: int
    fields: Record
    error: str | None = None


@dataclass(init=False)
class ImportRow:
    """A checked row. `errors` lists every bad field ("signed_on: not a date").

    Made for every row of an import, so `__init__` sets only the row number, the kind and the
    two lists; the other fields read their class defaults until set."""

    row: int
    name: str = ""
    kind: str = "organisation"
    capacity: str | None = None
    affiliation: str | None = None
    country: str | None = None
    org_type: str | None = None
    sort_name: str | None = None
    party: str | None = None
    body: str | None = None
    signed_on: date | None = None
    withdrawn_on: date | None = None
    position: int | None = None
    actor_id: int | None = None
    source: str | None = None
    status: str = "confirmed"
    identifiers: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __init__(self, row: int, kind: str = "organisation") -> None:
        self.row = row
        self.kind = kind
        self.identifiers = []
        self.errors = []


# Python codecs that decode bytes to text but are no charset a CSV or JSON file is written in:
# UTF-7 smuggles markup past filters (`+ADw-script+AD4-`), the escape codecs run escapes,
# idna and punycode are for host names.
_NOT_CHARSETS = frozenset(("utf-7", "idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined"))


def text_encoding(charset: str) -> str:
    """Python's name of a text charset (`windows-1252` -> `cp1252`). Refused (422): an unknown
    one, a codec that is not a text encoding (`base64`, `zlib`, `rot13`), and those of
    `_NOT_CHARSETS`."""
    try:
        info = codecs.lookup(charset)
    except (LookupError, ValueError, TypeError):
        raise Invalid(
            f"unknown charset {charset[:40]!r}: send UTF-8, or name the body's charset "
            "(e.g. text/csv; charset=windows-1252)",
            field="header.Content-Type",
        ) from None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        raise Invalid(
            f"charset {charset[:40]!r} is not a text charset this service reads: send UTF-8, or name "
            "the body's charset (e.g. text/csv; charset=windows-1252, utf-16)",
            field="header.Content-Type",
        )
    return info.name


def _decode(data: bytes, charset: str | None = None) -> str:
    """The body as text, in `charset` (the one its Content-Type declares) or else UTF-8; a byte
    order mark is dropped. Refused (422, with the place): an unknown charset, bytes that are not
    of the charset, a NUL."""
    encoding = "utf-8"
    if charset:
        encoding = text_encoding(charset)
    wide = encoding.startswith(("utf-16", "utf-32"))  # NUL bytes are part of their characters
    if b"\x00" in data and not wide:
        offset = data.index(b"\x00")
        line = data.count(b"\n", 0, offset) + 1
        raise Invalid(
            f"the body holds a NUL byte at byte offset {offset} (line {line}): "
            "binary data is not CSV or JSON",
            field="body",
        )
    if encoding == "utf-8" and data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        where = f"byte offset {exc.start}"
        if not wide:
            line = data.count(b"\n", 0, exc.start) + 1
            where += f" (line {line})"
        label = "UTF-8" if encoding == "utf-8" else charset
        raise Invalid(
            f"the body is not {label}: byte 0x{data[exc.start]:02x} at {where}", field="body"
        ) from exc
    if wide and "\x00" in text:
        offset = text.index("\x00")
        line = text.count("\n", 0, offset) + 1
        raise Invalid(
            f"the body holds a NUL character at line {line}: binary data is not CSV or JSON",
            field="body",
        )
    return text.removeprefix("\ufeff")


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


@dataclass(frozen=True)
class Shape:
    """The largest body shape read (settings `MAX_CSV_COLUMNS`, `MAX_LINE_BYTES`,
    `MAX_JSON_DEPTH`): past them a body is refused at once, before any row is read."""

    columns: int = 200
    line_bytes: int = 1024 * 1024
    json_depth: int = 32


def _check_lines(data: bytes, limit: int) -> None:
    longest = max(map(len, data.split(b"\n")))
    if longest > limit:
        raise Invalid(
            f"a line of the body is {longest} bytes long, over the limit of {limit} (MAX_LINE_BYTES)",
            field="body",
        )


def read_csv(
    data: bytes, rename: Mapping[str, str] | None = None, charset: str | None = None, shape: Shape = Shape()
) -> tuple[list[str], Iterator[RawRow]]:
    """The header (lower-cased, columns renamed by `rename`: {"organisation": "name"}) and the
    data rows of a CSV body (in `charset`, default UTF-8). Linear in the body's size; a body
    past `shape` is refused whole."""
    _check_lines(data, shape.line_bytes)
    text = _decode(data, charset)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header_row = next(reader)
    except StopIteration:
        raise Invalid(
            "the CSV body is empty: it needs a header row with a 'name' column", field="body"
        ) from None
    except csv.Error as exc:
        raise Invalid(f"the CSV header cannot be read: {exc} (line {reader.line_num})", field="body") from exc
    if len(header_row) > shape.columns:
        raise Invalid(
            f"the CSV header has {len(header_row)} columns, over the limit of {shape.columns} (MAX_CSV_COLUMNS)",
            field="body",
        )
    header = [h.strip().lower() for h in header_row]
    header = [(rename or {}).get(h, h) for h in header]
    if "name" not in header:
        raise Invalid(
            f"the CSV header lacks a 'name' column (it has: {', '.join(h for h in header if h) or 'nothing'})",
            field="body",
        )
    dupes = sorted(h for h, n in Counter(header).items() if h and n > 1)
    if dupes:
        raise Invalid(f"the CSV header repeats the column(s) {', '.join(dupes)}", field="body")
    return header, _csv_rows(reader, header)


def _cell(value: str) -> str | None:
    """A CSV field as kept: trimmed, empty = null, a spreadsheet-escaped formula unescaped."""
    value = value.strip()
    return unescape_cell(value) if value.startswith("'") else value or None


def _csv_rows(reader: Any, header: list[str]) -> Iterator[RawRow]:
    number = 0
    width = len(header)
    named = all(header)
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            number += 1
            yield RawRow(number, {}, f"row cannot be parsed: {exc} (CSV line {reader.line_num})")
            continue
        if named and len(values) == width:  # the usual row: what the general path below does
            record: Record = dict(zip(header, [_cell(v) for v in values], strict=True))
            if any(record.values()):
                number += 1
                yield RawRow(number, record)
            continue
        if not values or all(not v.strip() for v in values):
            continue  # blank lines are not rows
        number += 1
        if len(values) > len(header):
            yield RawRow(
                number,
                {},
                f"row has {len(values)} fields, the header has {len(header)} (CSV line {reader.line_num})",
            )
            continue
        record = {}
        for i, column in enumerate(header):
            if column:
                record[column] = _cell(values[i]) if i < len(values) else None
        yield RawRow(number, record)


def read_json(
    data: bytes, rename: Mapping[str, str] | None = None, charset: str | None = None, shape: Shape = Shape()
) -> Iterator[RawRow]:
    """The rows of a JSON array of objects; scalar values only (numbers become text)."""
    text = _decode(data, charset)
    if json_depth_over(text.encode(), shape.json_depth):
        raise Invalid(
            f"the JSON body nests deeper than the limit of {shape.json_depth} levels (MAX_JSON_DEPTH)",
            field="body",
        )
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Invalid(
            f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", field="body"
        ) from exc
    if not isinstance(document, list):
        raise Invalid("the JSON body must be an array of objects", field="body")
    return _json_rows(document, rename or {})


def _json_rows(document: list[Any], rename: Mapping[str, str]) -> Iterator[RawRow]:
    for number, item in enumerate(document, start=1):
        if not isinstance(item, dict):
            yield RawRow(number, {}, "row must be a JSON object")
            continue
        record: Record = {}
        bad: list[str] = []
        for key, value in item.items():
            column = str(key).strip().lower()
            column = rename.get(column, column)
            if value is None or isinstance(value, str):
                if value and "\x00" in value:  # (a JSON "\u0000": no database text holds it)
                    bad.append(f"{column}: holds a NUL character")
                record[column] = _clean(value)
            elif isinstance(value, bool):
                bad.append(f"{column}: must be text")
            elif isinstance(value, int | float):
                record[column] = str(value)
            elif column == "identifiers" and isinstance(value, list):
                parts = []
                for ident in value:
                    if isinstance(ident, dict) and {"scheme", "value"} <= ident.keys():
                        parts.append(f"{ident['scheme']}:{ident['value']}")
                    else:
                        bad.append("identifiers: items must be {scheme, value} objects")
                        break
                record[column] = ";".join(parts) or None
            else:
                bad.append(f"{column}: must be text, a number or null")
        yield RawRow(number, record, "; ".join(bad) if bad else None)


def _date(value: str, column: str, errors: list[str]) -> date | None:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        errors.append(f"{column}: not a date")
        return None
    if (problem := window_problem(day)) is not None:
        errors.append(f"{column}: {problem}")
        return None
    return day


def _text(f: Record, column: str, errors: list[str]) -> str | None:
    value = f.get(column)
    if value is not None and len(value) > MAX_TEXT:
        errors.append(f"{column}: longer than {MAX_TEXT} characters")
        return None
    return value


_OPTIONAL = frozenset(
    (
        "kind", "capacity", "affiliation", "sort_name", "source", "country", "org_type", "body", "party",
        "signed_on", "withdrawn_on", "position", "actor_id", "status", "identifiers", *IDENTIFIER_COLUMNS,
    )
)  # fmt: skip
_KIND = frozenset(("kind",))


def check_row(raw: RawRow, *, default_kind: str) -> ImportRow:
    """Check a row's fields; every problem is listed in `errors`. Slugs (body, party) are
    resolved later, against the database."""
    row = ImportRow(row=raw.row, kind=default_kind)
    errors = row.errors
    if raw.error:
        errors.append(raw.error)
        return row
    f = raw.fields
    name = _text(f, "name", errors)
    if name is None:
        if "name: longer" not in "".join(errors):
            errors.append("name: required")
    else:
        row.name = name
    read = _OPTIONAL.intersection(f)
    if read and read != _KIND:
        _check_fields(f, row, errors)
    elif (kind := f.get("kind")) is not None:  # a name and a kind only: the first check below
        _check_kind(kind, row, errors)
    return row


def _check_kind(kind: str, row: ImportRow, errors: list[str]) -> None:
    if kind.lower() in ACTOR_KINDS:
        row.kind = kind.lower()
    else:
        errors.append(f"kind: must be {spelled(ACTOR_KINDS)}")


def _check_fields(f: Record, row: ImportRow, errors: list[str]) -> None:
    """The fields after the name, in order (so are the errors)."""
    kind = f.get("kind")
    if kind is not None:
        _check_kind(kind, row, errors)
    row.capacity = _text(f, "capacity", errors)
    row.affiliation = _text(f, "affiliation", errors)
    row.sort_name = _text(f, "sort_name", errors)
    row.source = _text(f, "source", errors)
    if row.source is not None and (problem := url_problem(row.source)) is not None:
        errors.append(f"source: {problem}")
        row.source = None
    country = f.get("country")
    if country is not None:
        if (code := country_code(country)) is not None:
            row.country = code
        else:
            errors.append(f"country: {NOT_A_COUNTRY}")
    org_type = f.get("org_type")
    if org_type is not None:
        if org_type.lower() not in ORG_TYPES:
            errors.append(f"org_type: must be {spelled(ORG_TYPES)}")
        elif row.kind == "person":
            errors.append("org_type: only organisations have an org_type")
        else:
            row.org_type = org_type.lower()
    row.body = f.get("body")
    row.party = f.get("party")
    if (row.body or row.party) and row.kind != "person":
        errors.append("body: only people hold seats; body and party need kind person")
    if (value := f.get("signed_on")) is not None:
        row.signed_on = _date(value, "signed_on", errors)
    if (value := f.get("withdrawn_on")) is not None:
        row.withdrawn_on = _date(value, "withdrawn_on", errors)
    if (value := f.get("position")) is not None:
        try:
            row.position = int(value)
            if row.position < 0:
                raise ValueError
        except ValueError:
            errors.append("position: not a whole number")
        else:
            if row.position > MAX_INT:
                errors.append(f"position: larger than {MAX_INT}")
    if (value := f.get("actor_id")) is not None:
        try:
            row.actor_id = int(value)
        except ValueError:
            errors.append("actor_id: not a whole number")
        else:
            if not 1 <= row.actor_id <= MAX_INT:
                errors.append(f"actor_id: not an id (1 to {MAX_INT})")
                row.actor_id = None
    if (value := f.get("status")) is not None:
        if value.lower() in SIGNATURE_STATUSES:
            row.status = value.lower()
        else:
            errors.append(f"status: must be {spelled(SIGNATURE_STATUSES)}")
    pairs: list[tuple[str, str]] = []
    for scheme in IDENTIFIER_COLUMNS:
        if (value := f.get(scheme)) is not None:
            pairs.append((scheme, value))
    if (value := f.get("identifiers")) is not None:
        for part in value.split(";"):
            if not part.strip():
                continue
            scheme, sep, ident = part.strip().partition(":")
            scheme, ident = scheme.strip().lower(), ident.strip()
            if not sep or not ident or not SCHEME.match(scheme):
                errors.append(f"identifiers: {part.strip()!r} is not scheme:value")
            else:
                pairs.append((scheme, ident))
    for scheme, ident in pairs:
        if (problem := identifier_problem(scheme, ident)) is not None:
            errors.append(problem)
    seen: dict[str, str] = {}
    for scheme, ident in pairs:
        if seen.get(scheme, ident) != ident:
            errors.append(f"identifiers: two values for {scheme}")
        seen[scheme] = ident
    row.identifiers = sorted(set(pairs))


def parse_identifiers(value: str | None) -> list[tuple[str, str]]:
    """`scheme:value;scheme:value` -> pairs (the dump format); bad parts raise ValueError."""
    pairs: list[tuple[str, str]] = []
    for part in (value or "").split(";"):
        if not part.strip():
            continue
        scheme, sep, ident = part.strip().partition(":")
        scheme, ident = scheme.strip(), ident.strip()
        if not sep or not ident or not SCHEME.match(scheme):
            raise ValueError(f"{part.strip()!r} is not scheme:value")
        if (problem := identifier_problem(scheme, ident)) is not None:
            raise ValueError(problem)
        pairs.append((scheme, ident))
    return pairs


def format_identifiers(pairs: list[tuple[str, str]]) -> str:
    return ";".join(f"{s}:{v}" for s, v in pairs)
