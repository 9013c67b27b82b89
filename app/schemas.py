"""Field types shared by every domain's request and response schemas."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from app.countries import NOT_A_COUNTRY, country_code
from app.dates import in_window
from app.urls import url_problem


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def trimmed(value: str) -> str:
    """Text as kept: without NULs, whitespace around it trimmed. An `AfterValidator`, so the
    documented limits (length, pattern) hold for what the client sent, as the OpenAPI document
    says, and the trimming comes after."""
    return _no_nul(value).strip()


def filled(value: str) -> str:
    """`trimmed`, and not blank."""
    value = trimmed(value)
    if not value:
        raise ValueError("must not be blank")
    return value


Slug = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$"),
    Field(
        description="Lower-case letters, digits, '-' and '_': URL-safe and unique.",
        examples=["xinjiang-2020"],
    ),
]


def _country(value: str) -> str:
    if (code := country_code(value)) is None:
        raise ValueError(NOT_A_COUNTRY)
    return code


Country = Annotated[
    str,
    StringConstraints(min_length=2, max_length=2, pattern=r"^[A-Za-z]{2}$"),
    AfterValidator(_country),
    Field(
        description="ISO 3166-1 alpha-2 country code, or XK (Kosovo); kept in upper case. "
        "ZZ and the other user-assigned codes are refused: leave an unknown country empty.",
        examples=["GB"],
    ),
]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=1000), AfterValidator(filled)]
LongText = Annotated[str, StringConstraints(max_length=1_000_000), AfterValidator(trimmed)]


def _web_url(value: str) -> str:
    value = trimmed(value)
    if (problem := url_problem(value)) is not None:
        raise ValueError(problem)
    return value


Url = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2000),
    AfterValidator(_web_url),
    Field(
        description="An absolute http or https URL with a host; any other scheme (javascript:, data:, …) is refused.",
        examples=["https://www.hrw.org/"],
        json_schema_extra={"format": "uri"},
    ),
]


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(value: object) -> object:
    """Dates are written YYYY-MM-DD: no timestamps, no numbers taken for days since 1970."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value.strip()):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value.strip()


IsoDate = Annotated[date, BeforeValidator(_iso_date), AfterValidator(in_window)]

# PostgreSQL's INTEGER holds 32 bits; SQLite would keep more, so the API bounds every whole
# number it stores to what both databases hold.
MAX_INT = 2**31 - 1
# An id in a path: past what the databases hold is a 422 on both (not a 404 on one, 422 on the other).
Id = Annotated[int, Path(ge=1, le=MAX_INT)]


class Input(BaseModel):
    """Base of request bodies: unknown fields are an error, not silently dropped. Text is
    trimmed by its type (`trimmed`, `filled`) after its limits are checked on what was sent."""

    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)
