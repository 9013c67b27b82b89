"""Lists and analytics as spreadsheets and as lines of JSON: `?format=json|csv|ndjson`, or the
`Accept` header (`application/json`, `text/csv`, `application/x-ndjson`), and the one writer
that turns rows into CSV or NDJSON.

Rows are items of a pydantic model: a list's own item schema (`SignatureOut`, `ActorOut`, …)
or the row model of an analytic (`app.analytics.results.BreakdownRow`, …). NDJSON writes each
row as its JSON (nested as in the JSON answer); CSV flattens it: a nested model's fields become
columns named `outer.inner`, a list of plain values one cell joined with `; `, anything else
nested its JSON text. Every CSV cell goes through `app.spreadsheet.safe_cell` (people open these
in spreadsheets; see docs/security.md).

`Pager` (app/pagination.py) streams a whole list this way; the analytics render their rows
with `rows_bytes` inside their hot reads.
"""

from __future__ import annotations

import csv
import io
import json
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from fastapi import Depends, Query, Request
from pydantic import BaseModel

from app.errors import NotAcceptable
from app.spreadsheet import safe_cell

Format = Literal["json", "csv", "ndjson"]

# What each format is sent as, and what `Accept` names it by, in the order preferred on a tie.
MEDIA_TYPES: dict[Format, str] = {
    "json": "application/json",
    "csv": "text/csv",
    "ndjson": "application/x-ndjson",
}
CONTENT_TYPES: dict[Format, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "ndjson": "application/x-ndjson; charset=utf-8",
}
ROWS_PER_CHUNK = 500

FormatQuery = Annotated[
    Format | None,
    Query(
        alias="format",
        description="`json`, `csv` or `ndjson` (a list as CSV or NDJSON is all of it, streamed, from "
        "`cursor`); without it the `Accept` header chooses, JSON by default.",
    ),
]


def negotiate(accept: str | None) -> Format:
    """The format an `Accept` header asks for (RFC 9110 §12.5.1): each offered type takes the
    quality of the most specific range that matches it; the best quality wins, then the most
    specific match (`text/csv, */*` is CSV), then JSON, CSV, NDJSON in that order. No header is
    JSON; a header that accepts none of them is a 406."""
    if accept is None or not accept.strip():
        return "json"
    ranges: list[tuple[str, float]] = []
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media:
            ranges.append((media.lower(), quality))
    best: tuple[float, int, int, Format] | None = None
    for order, (fmt, offered) in enumerate(MEDIA_TYPES.items()):
        kind = offered.split("/")[0]
        matches = [
            (specificity, quality)
            for media, quality in ranges
            for specificity in [{offered: 2, f"{kind}/*": 1, "*/*": 0}.get(media)]
            if specificity is not None
        ]
        if not matches:
            continue
        specificity, quality = max(matches)
        if quality > 0 and (best is None or (quality, specificity, -order) > best[:3]):
            best = (quality, specificity, -order, fmt)
    if best is None:
        offered_types = ", ".join(MEDIA_TYPES.values())
        raise NotAcceptable(f"Accept names none of the types offered here: {offered_types}")
    return best[3]


async def _wanted(request: Request, fmt: FormatQuery = None) -> Format:
    return fmt if fmt is not None else negotiate(request.headers.get("accept"))


# The `format` query parameter and the `Accept` header of a read that answers rows, as one choice.
Wanted = Annotated[Format, Depends(_wanted)]


# --- rows to CSV and NDJSON ------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str  # in the CSV header: the JSON names of the path, joined by dots
    path: tuple[str, ...]  # through the row's JSON


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (itself or optional), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        models = [a for a in get_args(annotation) if a is not type(None)]
        if len(models) == 1:
            return _nested_model(models[0])
    return None


def columns(model: type[BaseModel], depth: int = 3) -> list[Column]:
    """The CSV columns of a row model, its nested models flattened (to `depth` levels)."""
    found: list[Column] = []
    for name, field in model.model_fields.items():
        key = field.serialization_alias or field.alias or name
        nested = _nested_model(field.annotation)
        if nested is not None and depth > 1:
            found += [Column(f"{key}.{c.name}", (key, *c.path)) for c in columns(nested, depth - 1)]
        else:
            found.append(Column(key, (key,)))
    return found


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):  # as in the JSON (the csv module would write True)
        return "true" if value else "false"
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return "; ".join("" if v is None else str(v) for v in value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return safe_cell(value)


def _lookup(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _chunks(rows: Iterable[BaseModel]) -> Iterator[list[BaseModel]]:
    chunk: list[BaseModel] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == ROWS_PER_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def encode_rows(fmt: Format, model: type[BaseModel], rows: Iterable[BaseModel]) -> Iterator[bytes]:
    """`rows` (items of `model`) as CSV (a header line first, even with no rows) or NDJSON,
    a chunk of rows at a time, as the rows come."""
    if fmt == "ndjson":
        for chunk in _chunks(rows):
            yield "".join(row.model_dump_json(by_alias=True) + "\n" for row in chunk).encode()
        return
    if fmt != "csv":
        raise ValueError(f"rows are CSV or NDJSON, not {fmt}")
    cols = columns(model)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(safe_cell(c.name) for c in cols)
    for chunk in _chunks(rows):
        for row in chunk:
            data = row.model_dump(mode="json", by_alias=True)
            writer.writerow(_cell(_lookup(data, c.path)) for c in cols)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():  # the header alone
        yield buffer.getvalue().encode()


def rows_bytes(fmt: Format, model: type[BaseModel], rows: Iterable[BaseModel]) -> bytes:
    """The whole answer at once, for an analytic whose rows are few and kept rendered."""
    return b"".join(encode_rows(fmt, model, rows))


def attachment(name: str, fmt: Format) -> dict[str, str]:
    """The `Content-Disposition` that saves the answer as `<name>.csv` (or `.ndjson`)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name) or "export"
    return {"Content-Disposition": f'attachment; filename="{safe}.{fmt}"'}


def document_formats(schema: dict[str, Any]) -> None:
    """In the OpenAPI document, every GET that takes `format` answers 200 as CSV and NDJSON too
    (as text: their columns follow the JSON schema's fields), and 406 for an `Accept` it cannot
    serve."""
    for operations in schema.get("paths", {}).values():
        get = operations.get("get")
        if get is None or not any(
            p.get("name") == "format" and p.get("in") == "query" for p in get.get("parameters", [])
        ):
            continue
        ok = get.setdefault("responses", {}).setdefault("200", {"description": "Successful Response"})
        content = ok.setdefault("content", {})
        content[MEDIA_TYPES["csv"]] = {
            "schema": {
                "type": "string",
                "description": "CSV with a header line: one row per item, nested fields as "
                "`outer.inner` columns, formula-like text prefixed with `'`.",
            }
        }
        content[MEDIA_TYPES["ndjson"]] = {
            "schema": {"type": "string", "description": "One JSON object per line, as the JSON items."}
        }
        get["responses"].setdefault("406", {"description": "`Accept` names none of the offered types"})
