from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, Field, StrictInt, StringConstraints, field_validator, model_validator

from app.identifiers import identifier_problem
from app.schemas import MAX_INT, Country, Input, IsoDate, Output, ShortText, Slug, filled
from app.vocabulary import ActorKind, OrgType

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


Aliases = Annotated[
    list[ShortText],
    Field(
        max_length=100,
        description="Other names of the actor: former names, translations, acronyms, spellings. "
        "Matching and search use them.",
    ),
]


class ActorCreate(Input):
    """A new actor. If an actor with one of these identifiers, or of the same kind with the same
    normalised name or alias (for organisations: and no different country), exists already, the
    write is refused with 409 naming it (`POST /v1/actors`) or uses it (an actor given inline
    in a signature or recipient), unless `new` is true."""

    kind: ActorKind
    name: ShortText
    sort_name: ShortText | None = None
    country: Country | None = None
    org_type: OrgType | None = Field(default=None, description="For organisations only.")
    identifiers: list[IdentifierIn] = Field(default_factory=list, max_length=50)
    aliases: Aliases = Field(default_factory=list)
    new: bool = Field(
        default=False,
        description="Make a new actor even though one of the same kind has this name (two "
        "organisations that really share a name). Identifiers stay unique all the same.",
    )


class ActorOut(Output):
    id: int
    kind: str
    name: str
    sort_name: str | None
    country: str | None
    org_type: str | None
    identifiers: list[IdentifierOut]
    aliases: list[str] = Field(default_factory=list, description="Other names of the actor.")
    created_at: datetime
    updated_at: datetime

    @field_validator("aliases", mode="before")
    @classmethod
    def _alias_names(cls, value: Any) -> Any:
        return [getattr(a, "name", a) for a in value] if isinstance(value, list) else value


class ActorUpdate(Input):
    """Fields to change; `identifiers` and `aliases`, when given, replace the whole list."""

    name: ShortText | None = None
    sort_name: ShortText | None = None
    country: Country | None = None
    org_type: OrgType | None = None
    identifiers: list[IdentifierIn] | None = Field(default=None, max_length=50)
    aliases: list[ShortText] | None = Field(default=None, max_length=100)


class MergeRequest(Input):
    """Actors to fold into the actor of the path."""

    merge: list[Annotated[StrictInt, Field(ge=1, le=MAX_INT)]] = Field(min_length=1, max_length=100)
    force: bool = Field(
        default=False, description="Merge even when the actors hold different values of an identifier scheme."
    )


class MergeOut(Output):
    actor: ActorOut
    merged: list[int] = Field(description="The ids folded in; they now redirect to `actor`.")
    signatures_moved: int
    signatures_folded: int = Field(
        description="Signatures of a letter signed by more than one, folded into one."
    )


class PossibleDuplicateOut(Output):
    actors: list[ActorOut]
    score: float = Field(description="0 to 1: 1 for an identifier or the same name.")
    evidence: list[str]


class DecisionIn(Input):
    actors: list[Annotated[StrictInt, Field(ge=1, le=MAX_INT)]] = Field(min_length=2, max_length=2)
    decision: Literal["merge", "distinct"]
    keep: StrictInt | None = Field(
        default=None, ge=1, le=MAX_INT, description="With merge: the actor kept (default the lower id)."
    )


class DecisionOut(Output):
    decision: str
    actors: list[int]
    actor: ActorOut | None = Field(default=None, description="With merge: the kept actor.")


class ChangeOut(Output):
    id: int
    at: datetime
    key_name: str
    action: str
    entity: str
    entity_key: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


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
    seats_today: int = Field(
        description="People whose seat today is in this body (of several memberships valid today, the one "
        "that counts: the latest-starting, then the first recorded)."
    )


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
