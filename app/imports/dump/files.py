"""The dump's files: their columns, and their rows read from a directory."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

from app.countries import COUNTRIES
from app.dates import window_problem
from app.errors import Invalid
from app.schemas import MAX_INT
from app.urls import url_problem
from app.vocabulary import spelled

BATCH = 5000
# (step: a file name, or what is being done; rows done so far; rows in all, or an estimate, if known)
Progress = Callable[[str, int, int | None], None]

COLUMNS: dict[str, list[str]] = {
    "bodies.csv": ["slug", "name", "country"],
    "parties.csv": ["slug", "name", "country"],
    "campaigns.csv": ["slug", "name", "description"],
    "actors.csv": ["ref", "kind", "name", "sort_name", "country", "org_type", "identifiers"],
    "memberships.csv": ["actor_ref", "body", "party", "constituency", "start_date", "end_date"],
    "aliases.csv": ["actor_ref", "name"],
    "letters.csv": [
        "slug",
        "title",
        "summary",
        "language",
        "published_on",
        "status",
        "claimed_signatory_count",
        "campaign",
        "body",
    ],
    "claims.csv": ["letter", "count", "wording", "url"],
    "sources.csv": ["letter", "label", "url"],
    "signatures.csv": [
        "letter",
        "actor_ref",
        "signed_on",
        "capacity",
        "affiliation",
        "position",
        "status",
        "withdrawn_on",
        "source",
    ],
    "recipients.csv": ["letter", "actor_ref", "role", "capacity"],
    "events.csv": ["letter", "date", "kind", "note", "url", "campaign"],
}
REQUIRED = {"actors.csv": ["ref", "kind", "name"]}

Row = dict[str, str | None]


RowSource = Callable[[str], Iterator[tuple[int, Row]] | None]  # file name -> (line, row) or None if absent


class DirectorySource:
    """Rows of the CSV files in a directory, read lazily, one at a time (a `RowSource`); the
    PostgreSQL bulk path reads the files themselves (`path`)."""

    def __init__(self, directory: Path) -> None:
        if not (directory / "actors.csv").is_file():
            raise Invalid(f"{directory} holds no actors.csv", field="dir")
        self.directory = directory

    def path(self, name: str) -> Path | None:
        path = self.directory / name
        return path if path.is_file() else None

    def __call__(self, name: str) -> Iterator[tuple[int, Row]] | None:
        path = self.path(name)
        return None if path is None else read_rows(path, name)


def directory_source(directory: Path) -> DirectorySource:
    """Rows of the CSV files in `directory`, read lazily, one at a time."""
    return DirectorySource(directory)


def read_rows(path: Path, name: str) -> Iterator[tuple[int, Row]]:
    """The rows as csv.DictReader would give them (blank rows skipped, a short row's missing
    fields None), each field trimmed and an empty one None; read with csv.reader, a third
    cheaper."""
    header: list[str] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, strict=True)
            header = [h.strip().lower() for h in next(reader, None) or []]
            missing = [c for c in REQUIRED.get(name, []) if c not in header]
            if missing:
                raise Invalid(f"{name}: the header lacks {', '.join(missing)}", field=name)
            width = len(header)
            for row in reader:
                if len(row) != width:
                    if not row:
                        continue
                    if len(row) > width:
                        raise Invalid(
                            f"{name} line {reader.line_num}: more fields than the header", field=name
                        )
                    row += [""] * (width - len(row))
                if "\x00" in "".join(row):  # SQLite would keep it; no PostgreSQL text can
                    column = header[next(i for i, v in enumerate(row) if "\x00" in v)]
                    raise Invalid(
                        f"{name} line {reader.line_num}, {column}: holds a NUL character", field=name
                    )
                yield reader.line_num, dict(zip(header, [v.strip() or None for v in row], strict=True))
    except csv.Error as exc:
        raise Invalid(f"{name} line {reader.line_num}: {exc}", field=name) from exc
    except UnicodeDecodeError:
        raise not_utf8(path, name, header) from None


def not_utf8(path: Path, name: str, header: list[str]) -> Invalid:
    """Where a dump file stops being UTF-8: its line (counted as the csv module counts) and
    the column the bad byte falls in."""
    with path.open("rb") as f:
        data = f.read()
    try:
        data.decode("utf-8")
        return Invalid(f"{name}: not UTF-8", field=name)
    except UnicodeDecodeError as exc:
        start = exc.start
    if not header:  # (the decoder reads ahead: the header may not have been read yet)
        first = data.split(b"\n", 1)[0].decode("utf-8", "replace").lstrip("\ufeff")
        header = [h.strip().lower() for h in next(csv.reader([first]), [])]
    line = data.count(b"\n", 0, start) + 1
    line_start = data.rfind(b"\n", 0, start) + 1
    before = data[line_start:start].decode("utf-8", "replace")
    fields = next(csv.reader([before]), [""])
    column = header[len(fields) - 1] if line > 1 and 0 < len(fields) <= len(header) else "header"
    return Invalid(
        f"{name} line {line}, {column}: byte 0x{data[start]:02x} is not UTF-8 (dump files are UTF-8)",
        field=name,
    )


# --- a row's fields, checked (the messages name the file and line) -----------------------------


def need(name: str, line: int, row: Row, column: str) -> str:
    value = row.get(column)
    if value is None:
        raise Invalid(f"{name} line {line}: {column} is required", field=name)
    return value


def check_date(name: str, line: int, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{name} line {line}: {value!r} is not a date", field=name) from None
    if (problem := window_problem(day)) is not None:
        raise Invalid(f"{name} line {line}: {value!r} {problem}", field=name)
    return day


def check_int(name: str, line: int, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise Invalid(f"{name} line {line}: {value!r} is not a whole number", field=name) from None
    if not -MAX_INT - 1 <= number <= MAX_INT:  # what PostgreSQL's INTEGER holds (so the API)
        raise Invalid(f"{name} line {line}: {value!r} is larger than {MAX_INT}", field=name)
    return number


def check_choice(name: str, line: int, row: Row, column: str, choices: tuple[str, ...]) -> str | None:
    """A value of a vocabulary (`app.vocabulary`), which the database's CHECK holds too."""
    value = row.get(column)
    if value is not None and value not in choices:
        raise Invalid(
            f"{name} line {line}: {column} must be {spelled(choices)}, not {value[:40]!r}", field=name
        )
    return value


def check_url(name: str, line: int, row: Row, column: str) -> str | None:
    """A URL a page may link to (`app.urls`): http or https with a host."""
    value = row.get(column)
    if value is not None and (problem := url_problem(value)) is not None:
        raise Invalid(f"{name} line {line}: {column} {problem}", field=name)
    return value


def check_country(name: str, line: int, value: str | None) -> str | None:
    if value is None:
        return None
    if value.upper() not in COUNTRIES:
        raise Invalid(f"{name} line {line}: {value!r} is not an ISO 3166-1 alpha-2 code", field=name)
    return value.upper()
