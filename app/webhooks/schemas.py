"""Request and response bodies of webhooks and the changes feed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StrictInt, StringConstraints

from app.schemas import Input, Output, Slug, Url
from app.webhooks import events
from app.webhooks.targets import TargetRefused, check_url


def _target(url: str) -> str:
    try:
        check_url(url)
    except TargetRefused as exc:
        raise ValueError(str(exc)) from exc
    return url


def _patterns(chosen: list[str]) -> list[str]:
    unknown = events.check_type_patterns(chosen)
    if unknown is not None:
        raise ValueError(
            f"{unknown!r} is not an event type, 'resource.*' or '*'; types: {', '.join(events.known_types())}"
        )
    return list(dict.fromkeys(chosen))


def _ladder(chosen: list[int]) -> list[int]:
    return sorted(set(chosen))


TargetUrl = Annotated[Url, AfterValidator(_target), Field(description="Where to post: http or https.")]
EventTypes = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=100)]],
    Field(
        min_length=1,
        max_length=100,
        description="Event types to send (`signature.created`), a resource's (`signature.*`) or all (`*`).",
        examples=[["signature.created", "signature.withdrawn", "letter.milestone"]],
    ),
    AfterValidator(_patterns),
]
Milestones = Annotated[
    list[Annotated[StrictInt, Field(ge=1, le=1_000_000_000)]],
    Field(
        min_length=1,
        max_length=100,
        description="Recorded-signature counts that send `letter.milestone` when a letter passes them.",
        examples=[[10, 50, 100, 500, 1000]],
    ),
    AfterValidator(_ladder),
]


class WebhookCreate(Input):
    url: TargetUrl
    events: EventTypes = Field(default_factory=lambda: ["*"])
    letter: Slug | None = Field(default=None, description="Only this letter's events.")
    milestones: Milestones = Field(default_factory=lambda: list(events.DEFAULT_MILESTONES))
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    active: bool = True


class WebhookUpdate(Input):
    """Only the fields sent change. `active: true` on a disabled webhook resumes its deliveries
    with the event it stopped at."""

    url: TargetUrl | None = None
    events: EventTypes | None = None
    letter: Slug | None = None
    milestones: Milestones | None = None
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    active: bool | None = None


class WebhookOut(Output):
    id: int
    url: str
    events: list[str]
    letter: str | None
    milestones: list[int]
    description: str | None
    active: bool
    status: Literal["active", "failing", "disabled"] = Field(
        description="`failing` after repeated failed deliveries (still retried); `disabled` when "
        "switched off, or when one event failed for the whole retry window."
    )
    disabled_reason: str | None
    consecutive_failures: int
    last_error: str | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="`whsec_…`: shown this once. Verify deliveries with it.")


class DeliveryOut(Output):
    id: int
    event_id: int
    event_type: str
    attempt: int
    succeeded: bool
    status_code: int | None
    error: str | None
    duration_ms: int
    attempted_at: datetime
    next_attempt_at: datetime | None


class TestSent(BaseModel):
    event_id: int
    type: str = events.TEST


class Change(BaseModel):
    """One event: what changed, where it lives, and its state after (and before) the change."""

    id: int
    type: str = Field(examples=["signature.withdrawn"])
    at: str
    resource: str
    action: str
    key: str
    letter: str | None
    path: str | None
    url: str | None
    state: dict[str, Any] | None
    previous: dict[str, Any] | None


class ChangesPage(BaseModel):
    """A page of the feed. `next_cursor` is never null: it is where to ask again (now, or later
    for what happens next); `has_more` says whether more events are ready now."""

    items: list[Change]
    next_cursor: str
    has_more: bool
