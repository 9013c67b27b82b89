"""Request and response bodies of the letters domain."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, Field, StrictInt, StringConstraints, model_validator

from app.actors.schemas import ActorCreate, ActorOut
from app.schemas import MAX_INT, Input, IsoDate, LongText, Output, ShortText, Slug, Url, filled
from app.vocabulary import EventKind, LetterStatus, RecipientRole, SignatureStatus

ActorMatch = Literal["existing", "created"]
Language = Annotated[
    str,
    StringConstraints(min_length=2, max_length=35, pattern=r"^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$"),
    Field(description="BCP 47 language tag.", examples=["en", "zh-Hans"]),
]


# --- claims and sources ---------------------------------------------------------------------


class ClaimCreate(Input):
    count: StrictInt | None = Field(
        default=None, ge=0, le=MAX_INT, description="The number claimed, when there is one."
    )
    wording: LongText | None = Field(default=None, description='As reported: "76 MPs and 57 Lords".')
    url: Url | None = None

    @model_validator(mode="after")
    def _count_or_wording(self) -> Self:
        if self.count is None and not self.wording:
            raise ValueError("give a count, a wording or both")
        return self


class ClaimOut(Output):
    id: int
    count: int | None
    wording: str | None
    url: str | None


class SourceCreate(Input):
    label: ShortText | None = None
    url: Url


class SourceOut(Output):
    id: int
    label: str | None
    url: str


# --- letters --------------------------------------------------------------------------------


class LetterCreate(Input):
    slug: Slug
    title: ShortText
    summary: LongText | None = None
    body: LongText | None = None
    language: Language | None = None
    published_on: IsoDate | None = None
    status: LetterStatus = "published"
    claimed_signatory_count: StrictInt | None = Field(default=None, ge=0, le=MAX_INT)
    campaign: Slug | None = Field(default=None, description="The campaign's slug.")


class LetterUpdate(Input):
    """Only the fields given change; `null` clears an optional field."""

    title: ShortText | None = None
    summary: LongText | None = None
    body: LongText | None = None
    language: Language | None = None
    published_on: IsoDate | None = None
    status: LetterStatus | None = None
    claimed_signatory_count: StrictInt | None = Field(default=None, ge=0, le=MAX_INT)
    campaign: Slug | None = None


class LetterOut(Output):
    id: int
    slug: str
    title: str
    summary: str | None
    body: str | None
    language: str | None
    published_on: dt.date | None
    status: str
    claimed_signatory_count: int | None = Field(description="What the letter or its press reports claim.")
    recorded_signatory_count: int = Field(description="Signatures recorded here, not withdrawn as of today.")
    campaign: str | None = Field(description="The campaign's slug.")
    claims: list[ClaimOut]
    sources: list[SourceOut]
    created_at: dt.datetime
    updated_at: dt.datetime


# --- signatures -----------------------------------------------------------------------------


class _ActorRef(Input):
    actor_id: StrictInt | None = Field(default=None, ge=1, le=MAX_INT, description="An existing actor.")
    actor: ActorCreate | None = Field(default=None, description="A new actor, created with this write.")

    @model_validator(mode="after")
    def _exactly_one_actor(self) -> Self:
        if (self.actor_id is None) == (self.actor is None):
            raise ValueError("give exactly one of actor_id and actor")
        return self


class SignatureCreate(_ActorRef):
    signed_on: IsoDate | None = Field(
        default=None, description="Defaults to the letter's published_on, else today."
    )
    capacity: ShortText | None = None
    affiliation: ShortText | None = None
    position: StrictInt | None = Field(default=None, ge=0, le=MAX_INT)
    source: Url | None = Field(default=None, description="Where the signature is evidenced.")
    status: SignatureStatus = "confirmed"


class SignatureUpdate(Input):
    """Only the fields given change. `withdrawn_on: null` reinstates a withdrawn signature;
    `actor_id` moves the signature to another actor (one matched to the wrong actor)."""

    actor_id: StrictInt | None = Field(
        default=None,
        ge=1,
        le=MAX_INT,
        description="Move the signature to this actor (who must not have signed the letter).",
    )
    signed_on: IsoDate | None = None
    capacity: ShortText | None = None
    affiliation: ShortText | None = None
    position: StrictInt | None = Field(default=None, ge=0, le=MAX_INT)
    source: Url | None = None
    status: SignatureStatus | None = None
    withdrawn_on: IsoDate | None = None


class SignatureOut(Output):
    letter: str = Field(description="The letter's slug.")
    actor: ActorOut
    signed_on: dt.date
    capacity: str | None
    affiliation: str | None
    position: int | None
    source: str | None
    status: str
    withdrawn_on: dt.date | None
    created_at: dt.datetime
    updated_at: dt.datetime
    actor_match: ActorMatch | None = Field(
        default=None,
        description="On a new signature: `existing` when the actor named (by `actor_id`, or inline "
        "and found by identifier or name) existed, `created` when it was made with this write.",
    )


class RetractIn(Input):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000), AfterValidator(filled)] = Field(
        description="Why the signature was a mistake (kept in the change record)."
    )


class RetractionOut(Output):
    """A signature removed as a mistake: it counts nowhere, as if it had never been recorded."""

    letter: str
    actor_id: int | None
    reason: str | None
    retracted_at: dt.datetime
    retracted_by: str = Field(description="The name of the API key that retracted it.")
    signature: dict[str, Any] = Field(description="The signature as it was.")


# --- recipients and events ------------------------------------------------------------------


class RecipientCreate(_ActorRef):
    role: RecipientRole = "to"
    capacity: ShortText | None = None


class RecipientOut(Output):
    id: int
    letter: str = Field(description="The letter's slug.")
    actor: ActorOut
    role: str
    capacity: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    actor_match: ActorMatch | None = Field(
        default=None, description="On a new recipient: as on a new signature."
    )


class EventCreate(Input):
    date: IsoDate
    kind: EventKind
    note: LongText | None = None
    url: Url | None = None


class EventOut(Output):
    id: int
    letter: str = Field(description="The letter's slug.")
    date: dt.date
    kind: str
    note: str | None
    url: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
