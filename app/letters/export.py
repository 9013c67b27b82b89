"""Render streamed signature rows as CSV or NDJSON, a chunk of rows at a time."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import astuple
from datetime import date

from app.letters.service import EXPORT_COLUMNS, SignatureRow

CHUNK_ROWS = 500


def _cell(value: object) -> object:
    if value is None:
        return ""  # empty field = null
    if isinstance(value, date):
        return value.isoformat()
    return value


def csv_chunks(rows: Iterable[SignatureRow]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for count, row in enumerate(rows, start=1):
        writer.writerow([_cell(v) for v in astuple(row)])
        if count % CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def ndjson_chunks(rows: Iterable[SignatureRow]) -> Iterator[str]:
    lines: list[str] = []
    for row in rows:
        record = {
            k: (v.isoformat() if isinstance(v, date) else v)
            for k, v in zip(EXPORT_COLUMNS, astuple(row), strict=True)
        }
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
        if len(lines) >= CHUNK_ROWS:
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)
