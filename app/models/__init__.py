"""All ORM classes. Importing this package registers every table on `Base.metadata`
(Alembic's autogenerate and `alembic check` read it from here)."""

from app.models.actors import (
    ACTOR_LOADS,
    Actor,
    ActorAlias,
    ActorRedirect,
    Body,
    DistinctActors,
    Identifier,
    Membership,
    Party,
)
from app.models.audit import ApiKey, ChangeRecord, IdempotencyRecord
from app.models.base import Base
from app.models.campaigns import Campaign
from app.models.letters import Claim, Event, Letter, Recipient, Signature, Source
from app.models.pairs import LetterPair
from app.models.rollups import LetterRollup, RegistryVersion
from app.models.webhooks import LetterMilestone, OutboxEvent, Webhook, WebhookDelivery

__all__ = [
    "ACTOR_LOADS",
    "Actor",
    "ActorAlias",
    "ActorRedirect",
    "ApiKey",
    "Base",
    "Body",
    "Campaign",
    "ChangeRecord",
    "Claim",
    "DistinctActors",
    "Event",
    "IdempotencyRecord",
    "Identifier",
    "Letter",
    "LetterMilestone",
    "LetterPair",
    "LetterRollup",
    "Membership",
    "OutboxEvent",
    "Party",
    "Recipient",
    "RegistryVersion",
    "Signature",
    "Source",
    "Webhook",
    "WebhookDelivery",
]
