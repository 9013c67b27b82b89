"""The window of dates accepted on input: every date a client, an import or a dump load gives
must lie between `DATE_MIN` and `DATE_MAX` (by default 1900-01-01 and 2100-12-31).

Open letters are dated within living memory; a date far outside is a typo (0202 for 2020) or
an attempt to make every timeline run over thousands of years. One rule, used by the API's
date type (`app.schemas.IsoDate`), the import rows and the dump loader.
"""

from __future__ import annotations

from datetime import date

from app.config import get_settings


def window() -> tuple[date, date]:
    settings = get_settings()
    return settings.date_min, settings.date_max


def window_problem(value: date) -> str | None:
    """Why `value` is outside the window, or None."""
    earliest, latest = window()
    if earliest <= value <= latest:
        return None
    return f"must be between {earliest.isoformat()} and {latest.isoformat()} (DATE_MIN, DATE_MAX)"


def in_window(value: date) -> date:
    """A pydantic `AfterValidator`: the date, or a ValueError saying the window."""
    if (problem := window_problem(value)) is not None:
        raise ValueError(problem)
    return value
