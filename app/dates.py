"""The window of dates accepted on input: every date a client, an import or a dump load gives
must lie between `DATE_MIN` and `DATE_MAX` (by default 1900-01-01 and 2100-12-31).

Open letters are dated within living memory; a date far outside is a typo (0202 for 2020) or
an attempt to make every timeline run over thousands of years. One rule, used by the API's
date type (`app.schemas.IsoDate`), the import rows and the dump loader.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

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


# The earliest time zone (UTC+14): a day that has not begun there has begun nowhere on Earth.
_EARLIEST_ZONE = timezone(timedelta(hours=14))


def latest_today() -> date:
    """The latest calendar day it is anywhere now: what "not in the future" means for a date a
    person writes down wherever they are (a withdrawal recorded today in Auckland)."""
    return datetime.now(_EARLIEST_ZONE).date()


def future_problem(value: date) -> str | None:
    """Why `value`, a day something happened on (a withdrawal), cannot be so: it has not come yet."""
    if value > latest_today():
        return f"{value.isoformat()} is in the future; record a withdrawal once it has happened"
    return None


_SEPARATED = re.compile(r"(\d{1,4})([./-])(\d{1,2})\2(\d{1,4})")


def iso_suggestion(value: str) -> str | None:
    """The ISO form of a date written in a common other way, for a "did you mean": `31/12/2024`
    and `31.12.2024` (day first, as most of the world writes), `2024/12/31`, `12/31/2024` (month
    first, when the day cannot be the first number), a date with a time (`2024-12-31T10:00`).
    Slashes with both first numbers up to 12 give both readings ("2024-03-04 or 2024-04-03")."""
    text = value.strip()
    if (day := _iso(text[:10])) is not None and len(text) > 10 and text[10] in "T ":
        return day
    if (match := _SEPARATED.fullmatch(text)) is None:
        return None
    first, sep, second, third = match.groups()
    if len(first) == 4:  # year first
        return _iso(f"{first}-{int(second):02d}-{int(third):02d}")
    if len(third) != 4:
        return None
    day_first = _iso(f"{third}-{int(second):02d}-{int(first):02d}")
    month_first = _iso(f"{third}-{int(first):02d}-{int(second):02d}") if sep == "/" else None
    readings = [d for d in dict.fromkeys((day_first, month_first)) if d is not None]
    return " or ".join(readings) or None


def _iso(text: str) -> str | None:
    try:
        return date.fromisoformat(text).isoformat() if len(text) == 10 else None
    except ValueError:
        return None
