from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from app.schemas import Country, Input, Output, ShortText

ActorKind = Literal["person", "organisation"]
OrgType = Literal["ngo", "union", "faith", "academic", "business", "government", "intergovernmental", "other"]
Scheme = Annotated[
    str,
    StringConstraints(min_length=1, max_length=50, pattern=r"^[a-z0-9_-]+$"),
    Field(description="Identifier scheme: wikidata, ukparliament, theyworkforyou, website, …"),
]
IdentifierValue = Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]


class IdentifierIn(Input):
    scheme: Scheme
    value: IdentifierValue


class IdentifierOut(Output):
    scheme: str
    value: str


class ActorCreate(Input):
    kind: ActorKind
    name: ShortText
    sort_name: ShortText | None = None
    country: Country | None = None
    org_type: OrgType | None = Field(default=None, description="For organisations only.")
    identifiers: list[IdentifierIn] = Field(default_factory=list, max_length=50)


class ActorOut(Output):
    id: int
    kind: str
    name: str
    sort_name: str | None
    country: str | None
    org_type: str | None
    identifiers: list[IdentifierOut]
    created_at: datetime
    updated_at: datetime
