"""Render streamed signature rows as CSV or NDJSON, a chunk of rows at a time."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterable, Iterator
from datetime import date

from app.letters.service import EXPORT_COLUMNS, SignatureRow
from app.spreadsheet import safe_row

CHUNK_ROWS = 500


def _batches(rows: Iterable[SignatureRow]) -> Iterator[list[SignatureRow]]:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, CHUNK_ROWS)):
        yield batch


def csv_chunks(rows: Iterable[SignatureRow]) -> Iterator[str]:
    """The csv module writes None as an empty field (null) and a date as YYYY-MM-DD; text that a
    spreadsheet would run as a formula gets a leading `'` (`app.spreadsheet`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for batch in _batches(rows):
        writer.writerows(safe_row(row) for row in batch)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():  # the header of an empty export
        yield buffer.getvalue()


def _iso(value: object) -> str:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def ndjson_chunks(rows: Iterable[SignatureRow]) -> Iterator[str]:
    for batch in _batches(rows):
        yield "".join(json.dumps(row._asdict(), ensure_ascii=False, default=_iso) + "\n" for row in batch)
