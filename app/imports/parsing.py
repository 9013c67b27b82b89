"""Reading an import body (CSV or a JSON array) into rows, and checking each row's fields.

Rules (SPEC §4): `row` is the 1-based data row (the CSV header is not a row), `line` the
physical line of the file a CSV row starts on (the header is line 1); an empty field is null; missing trailing fields are empty; a row with more fields than the header, or one the CSV
reader cannot tokenise (a stray quote), is an `error` row. The body is UTF-8 (a BOM is accepted)
unless its Content-Type names another charset (`text/csv; charset=windows-1252`, `utf-16`: what
spreadsheets save). A body not in its charset, one that holds NUL bytes, or one that is not a
JSON array is refused whole (`Invalid`, 422) with the place it broke. The CSV separator (`,`
`;` tab `|`) is sniffed. Headers are read as columns through `HEADER_ALIASES` and renames
(`?column=OLD:NEW`); two meaning one column are refused. Unknown columns are ignored, so a
signatures export (`actor_id`, …) reads back. Errors quote the value, with the one meant when
it is clear ("did you mean FR?").

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

from app.countries import NOT_A_COUNTRY, country_code, suggest_code
from app.dates import future_problem, iso_suggestion, window_problem
from app.errors import Invalid
from app.identifiers import SCHEME, identifier_problem
from app.limits import json_depth_over
from app.schemas import MAX_INT
from app.spreadsheet import unescape_cell
from app.text import fold
from app.urls import url_problem
from app.vocabulary import ACTOR_KINDS, ORG_TYPES, SIGNATURE_STATUSES, spelled, suggestion

IDENTIFIER_COLUMNS = ("wikidata", "ukparliament", "theyworkforyou", "website", "twitter", "opencorporates")
MAX_TEXT = 1000

Record = dict[str, str | None]


@dataclass(slots=True)
class RawRow:
    """One data row as read: its fields by column, or why it could not be read."""

    row: int
    fields: Record
    error: str | None = None
    line: int | None = None  # (CSV) the physical line the row starts on; the header is line 1


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
    line: int | None = None
    dates_ignored: bool = False  # gave signed_on or withdrawn_on, not read (no keep_dates)

    def __init__(self, row: int, kind: str = "organisation", line: int | None = None) -> None:
        self.row = row
        self.kind = kind
        self.line = line
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


# The columns an import reads, and the other headers spreadsheets give them (compared folded:
# case, accents, spaces and punctuation aside, so "Nom de l'organisation" is "nom de l organisation").
COLUMNS = (
    "name", "kind", "capacity", "affiliation", "country", "org_type", "sort_name", "body", "party",
    "signed_on", "withdrawn_on", "position", "actor_id", "source", "status", "identifiers",
    *IDENTIFIER_COLUMNS,
)  # fmt: skip
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "name": (
        "organisation", "organization", "org", "organisation name", "organization name", "org name",
        "nom", "nom de l organisation", "nom complet", "signataire", "signatory", "signatory name",
        "signatories", "full name", "organisme", "unterzeichner", "unterzeichnende", "nombre",
        "organizacion", "firmante", "entidad",
    ),
    "kind": ("type of signatory", "signatory type", "actor kind"),
    "country": ("pays", "land", "pais", "country code", "nation", "staat"),
    "org_type": ("organisation type", "organization type", "type d organisation", "organisationstyp"),
    "capacity": ("role", "title", "job title", "fonction", "titre", "funktion", "cargo", "puesto"),
    "affiliation": ("institution", "employer", "zugehorigkeit", "afiliacion", "employeur"),
    "signed_on": ("signed", "date", "datum", "fecha", "date signed", "signature date", "date de signature", "unterzeichnet am", "fecha de firma"),
    "withdrawn_on": ("withdrawn", "date withdrawn", "date de retrait", "zuruckgezogen am", "fecha de retirada"),
    "source": ("url", "link", "lien", "quelle", "fuente"),
    "party": ("parti", "partei", "partido"),
}  # fmt: skip
_FIELD_OF: dict[str, str] = {
    **{fold(c): c for c in COLUMNS},
    **{alias: column for column, aliases in HEADER_ALIASES.items() for alias in aliases},
}


def column_of(header: str) -> str:
    """The column a header means: a known column, or an alias of one ("Organisation" is
    `name`); any other header as it is, lower-cased (unknown columns are ignored)."""
    return _FIELD_OF.get(fold(header), header.strip().lower())


def parse_renames(specs: list[str], field: str) -> dict[str, str]:
    """`OLD:NEW` or `OLD=NEW` (`Organisation:name`) -> {folded OLD: NEW}. Refused (422 on
    `field`): a spec without both sides, a NEW that is no column the import reads."""
    out: dict[str, str] = {}
    for spec in specs:
        old, sep, new = spec.rpartition("=") if "=" in spec else spec.rpartition(":")
        old, new = old.strip(), new.strip().lower()
        if not sep or not old or not new:
            raise Invalid(f"{spec[:80]!r} is not OLD:NEW (e.g. Organisation:name)", field=field)
        if new not in COLUMNS:
            raise Invalid(
                f"{new[:40]!r} is not a column the import reads ({', '.join(COLUMNS)})", field=field
            )
        out[fold(old)] = new
    return out


def map_header(header: list[str], rename: Mapping[str, str] | None = None, field: str = "body") -> list[str]:
    """The column each header means: renamed (`rename`, keys folded), else `column_of`.
    Refused (422): two headers meaning one column ("Organisation" and "Name")."""
    rename = rename or {}
    out = [rename.get(fold(h), column_of(h)) if h.strip() else "" for h in header]
    repeated = sorted(h for h, n in Counter(fold(h) for h in header).items() if h and n > 1)
    if repeated:
        raise Invalid(f"the CSV header repeats the column(s) {', '.join(repeated[:10])}", field=field)
    given: dict[str, list[str]] = {}
    for original, column in zip(header, out, strict=True):
        if column:
            given.setdefault(column, []).append(original.strip())
    clashes = [
        f"{' and '.join(map(repr, names))} {'both' if len(names) == 2 else 'all'} mean '{column}'"
        for column, names in given.items()
        if len(names) > 1
    ]
    if clashes:
        raise Invalid(
            f"the header's columns {'; '.join(clashes[:10])}: drop one, or rename it (?column=OLD:NEW)",
            field=field,
        )
    return out


_DELIMITERS = ",;\t|"
_SAMPLE = 16 * 1024


def sniff_delimiter(text: str) -> str:
    """The field separator of a CSV text: `,`, `;` (Excel's in French, German and Spanish
    locales), tab or `|`, as `csv.Sniffer` reads it from the header line and the lines after it,
    kept only if the header line holds it (a `;` inside one-column names is no separator);
    else the one of them the header holds most; else `,`."""
    sample = text[:_SAMPLE]
    if len(text) > _SAMPLE and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    first = sample.splitlines()[0] if sample else ""
    try:
        found = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        found = ""
    if found and found in first:
        return found
    counts = {d: first.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_csv(
    data: bytes, rename: Mapping[str, str] | None = None, charset: str | None = None, shape: Shape = Shape()
) -> tuple[list[str], Iterator[RawRow]]:
    """The header (each column as `map_header` names it: renamed by `rename`, {"organisation":
    "name"}, or by an alias) and the data rows of a CSV body (in `charset`, default UTF-8; the
    separator sniffed). Linear in the body's size; a body past `shape` is refused whole."""
    _check_lines(data, shape.line_bytes)
    text = _decode(data, charset)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text), strict=True)
    try:
        header_row = next(reader)
        while not any(h.strip() for h in header_row):  # blank lines before the header
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
    header = map_header(header_row, rename)
    if "name" not in header:
        raise Invalid(
            f"the CSV header lacks a 'name' column (it has: {', '.join(h.strip() for h in header_row if h.strip()) or 'nothing'}); "
            "rename one with ?column=OLD:name",
            field="body",
        )
    return header, _csv_rows(reader, header)


def _cell(value: str) -> str | None:
    """A CSV field as kept: trimmed, empty = null, a spreadsheet-escaped formula unescaped."""
    value = value.strip()
    return unescape_cell(value) if value.startswith("'") else value or None


def _csv_rows(reader: Any, header: list[str]) -> Iterator[RawRow]:
    """The data rows, each with its `row` number (blank lines are not rows) and the physical
    line it starts on (blank lines and each line of a quoted multi-line cell counted)."""
    number = 0
    width = len(header)
    named = all(header)
    last = reader.line_num  # the physical line the previous record ended on
    while True:
        line = last + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            number += 1
            last = reader.line_num
            yield RawRow(number, {}, f"row cannot be parsed: {exc}", line)
            continue
        last = reader.line_num
        if named and len(values) == width:  # the usual row: what the general path below does
            record: Record = dict(zip(header, [_cell(v) for v in values], strict=True))
            if any(record.values()):
                number += 1
                yield RawRow(number, record, None, line)
            continue
        if not values or all(not v.strip() for v in values):
            continue  # blank lines are not rows
        number += 1
        if len(values) > len(header):
            yield RawRow(number, {}, f"row has {len(values)} fields, the header has {len(header)}", line)
            continue
        record = {}
        for i, column in enumerate(header):
            if column:
                record[column] = _cell(values[i]) if i < len(values) else None
        yield RawRow(number, record, None, line)


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
    columns: dict[Any, str] = {}  # each key's column, as `map_header` names a CSV header's
    for number, item in enumerate(document, start=1):
        if not isinstance(item, dict):
            yield RawRow(number, {}, "row must be a JSON object")
            continue
        record: Record = {}
        bad: list[str] = []
        for key, value in item.items():
            if (column := columns.get(key)) is None:
                column = columns[key] = rename.get(fold(str(key)), column_of(str(key)))
            if column in record:
                bad.append(f"{column}: given twice (as {key!r} and another key meaning it)")
                continue
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


def _echo(value: str) -> str:
    """A value as an error message quotes it (cut short)."""
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _date(value: str, column: str, errors: list[str]) -> date | None:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        hint = iso_suggestion(value)
        errors.append(
            f"{column}: {_echo(value)} is not a date (YYYY-MM-DD)"
            + (f"; did you mean {hint}?" if hint else "")
        )
        return None
    if (problem := window_problem(day)) is not None:
        errors.append(f"{column}: {problem}")
        return None
    return day


def _not_of(column: str, value: str, choices: tuple[str, ...]) -> str:
    """The error of a value out of a vocabulary, with the value meant when one is close:
    "kind: 'org' is not person or organisation; did you mean organisation?"."""
    hint = suggestion(value, choices)
    return f"{column}: {_echo(value)} is not {spelled(choices)}" + (f"; did you mean {hint}?" if hint else "")


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


def check_row(raw: RawRow, *, default_kind: str, keep_dates: bool = True) -> ImportRow:
    """Check a row's fields; every problem is listed in `errors`. Slugs (body, party) are
    resolved later, against the database. Without `keep_dates`, `signed_on` and `withdrawn_on`
    are not read (`dates_ignored` says the row gave one)."""
    row = ImportRow(raw.row, default_kind, raw.line)
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
        _check_fields(f, row, errors, keep_dates)
    elif (kind := f.get("kind")) is not None:  # a name and a kind only: the first check below
        _check_kind(kind, row, errors)
    return row


def _check_kind(kind: str, row: ImportRow, errors: list[str]) -> None:
    if kind.lower() in ACTOR_KINDS:
        row.kind = kind.lower()
    else:
        errors.append(_not_of("kind", kind, ACTOR_KINDS))


def _check_fields(f: Record, row: ImportRow, errors: list[str], keep_dates: bool) -> None:
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
            hint = suggest_code(country)
            errors.append(
                f"country: {_echo(country)} is {NOT_A_COUNTRY}" + (f"; did you mean {hint}?" if hint else "")
            )
    org_type = f.get("org_type")
    if org_type is not None:
        if org_type.lower() not in ORG_TYPES:
            errors.append(_not_of("org_type", org_type, ORG_TYPES))
        elif row.kind == "person":
            errors.append("org_type: only organisations have an org_type")
        else:
            row.org_type = org_type.lower()
    row.body = f.get("body")
    row.party = f.get("party")
    if (row.body or row.party) and row.kind != "person":
        errors.append("body: only people hold seats; body and party need kind person")
    if not keep_dates:
        row.dates_ignored = f.get("signed_on") is not None or f.get("withdrawn_on") is not None
    else:
        if (value := f.get("signed_on")) is not None:
            row.signed_on = _date(value, "signed_on", errors)
        if (value := f.get("withdrawn_on")) is not None:
            row.withdrawn_on = _date(value, "withdrawn_on", errors)
            if row.withdrawn_on is not None and (problem := future_problem(row.withdrawn_on)) is not None:
                errors.append(f"withdrawn_on: {problem}")
                row.withdrawn_on = None
    if (value := f.get("position")) is not None:
        try:
            row.position = int(value)
            if row.position < 0:
                raise ValueError
        except ValueError:
            errors.append(f"position: {_echo(value)} is not a whole number")
        else:
            if row.position > MAX_INT:
                errors.append(f"position: larger than {MAX_INT}")
    if (value := f.get("actor_id")) is not None:
        try:
            row.actor_id = int(value)
        except ValueError:
            errors.append(f"actor_id: {_echo(value)} is not a whole number")
        else:
            if not 1 <= row.actor_id <= MAX_INT:
                errors.append(f"actor_id: not an id (1 to {MAX_INT})")
                row.actor_id = None
    if (value := f.get("status")) is not None:
        if value.lower() in SIGNATURE_STATUSES:
            row.status = value.lower()
        else:
            errors.append(_not_of("status", value, SIGNATURE_STATUSES))
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
