from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from app.identifiers import identifier_problem
from app.schemas import Country, Input, IsoDate, Output, ShortText, Slug, filled

ActorKind = Literal["person", "organisation"]
OrgType = Literal["ngo", "union", "faith", "academic", "business", "government", "intergovernmental", "other"]
Scheme = Annotated[
    str,
    StringConstraints(min_length=1, max_length=50, pattern=r"^[a-z0-9_-]+$"),
    Field(description="Identifier scheme: wikidata, ukparliament, theyworkforyou, website, …"),
]
IdentifierValue = Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(filled)]


class IdentifierIn(Input):
    """An identifier, checked by its scheme's rule (`app.identifiers`)."""

    scheme: Scheme
    value: IdentifierValue

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if (problem := identifier_problem(self.scheme, self.value)) is not None:
            raise ValueError(problem)
        return self


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


class ActorUpdate(Input):
    """Fields to change; `identifiers`, when given, replaces the actor's whole list."""

    name: ShortText | None = None
    sort_name: ShortText | None = None
    country: Country | None = None
    org_type: OrgType | None = None
    identifiers: list[IdentifierIn] | None = Field(default=None, max_length=50)


class MembershipCreate(Input):
    body: Slug
    party: Slug | None = None
    constituency: ShortText | None = None
    start_date: IsoDate
    end_date: IsoDate | None = None


class MembershipUpdate(Input):
    body: Slug | None = None
    party: Slug | None = None
    constituency: ShortText | None = None
    start_date: IsoDate | None = None
    end_date: IsoDate | None = None


class MembershipOut(Output):
    id: int
    actor_id: int
    body: str = Field(description="The body's slug.")
    body_name: str
    party: str | None = Field(description="The party's slug; null for independents and crossbenchers.")
    party_name: str | None
    constituency: str | None
    start_date: date
    end_date: date | None


class ReferenceCreate(Input):
    slug: Slug
    name: ShortText
    country: Country | None = None


class ReferenceUpdate(Input):
    name: ShortText | None = None
    country: Country | None = None


class BodyCreate(ReferenceCreate):
    """A legislature or chamber."""


class BodyUpdate(ReferenceUpdate):
    pass


class PartyCreate(ReferenceCreate):
    """A political party."""


class PartyUpdate(ReferenceUpdate):
    pass


class PartyOut(Output):
    id: int
    slug: str
    name: str
    country: str | None
    created_at: datetime
    updated_at: datetime


class BodyOut(PartyOut):
    seats_today: int = Field(description="Memberships of this body valid today.")


class LetterBrief(Output):
    """A letter, in brief (the whole letter is at `/v1/letters/{slug}`)."""

    slug: str
    title: str
    published_on: date | None
    status: str


class ActorSignatureOut(Output):
    """A letter the actor signed, with the signature as printed."""

    letter: LetterBrief
    signed_on: date
    capacity: str | None
    affiliation: str | None
    position: int | None
    status: str
    withdrawn_on: date | None


class ActorLetterReceivedOut(Output):
    """A letter addressed to the actor."""

    letter: LetterBrief
    role: str
    capacity: str | None
