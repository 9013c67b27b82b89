from __future__ import annotations

from datetime import date

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.actors import Actor
from app.models.base import Base, Timestamped
from app.models.campaigns import Campaign
from app.vocabulary import EVENT_KINDS, LETTER_STATUSES, RECIPIENT_ROLES, SIGNATURE_STATUSES, one_of


class Letter(Timestamped, Base):
    """An open letter. `claimed_signatory_count` is what the letter or its press claims;
    the recorded count is computed from the signatures."""

    __tablename__ = "letters"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(String(1000))
    summary: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(35))
    published_on: Mapped[date | None] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(20), default="published", index=True)
    claimed_signatory_count: Mapped[int | None] = mapped_column(Integer)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    search_text: Mapped[str] = mapped_column(Text)
    # Bumped on every write that touches the letter or its signatures: a cheap validator.
    version: Mapped[int] = mapped_column(Integer, default=1)

    # The newest letter write is part of the letter list's validator (app/http/validators.py).
    __table_args__ = (
        Index(None, "updated_at"),
        CheckConstraint(one_of("status", LETTER_STATUSES), name="status"),
    )

    campaign: Mapped[Campaign | None] = relationship(back_populates="letters", lazy="raise")
    claims: Mapped[list[Claim]] = relationship(
        back_populates="letter", lazy="raise", cascade="all, delete-orphan", order_by="Claim.id"
    )
    sources: Mapped[list[Source]] = relationship(
        back_populates="letter", lazy="raise", cascade="all, delete-orphan", order_by="Source.id"
    )


class Claim(Timestamped, Base):
    """A count reported for a letter, with its wording and source (130, "more than 100", …)."""

    __tablename__ = "claims"

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id", ondelete="CASCADE"), index=True)
    count: Mapped[int | None] = mapped_column(Integer)
    wording: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(2000))

    letter: Mapped[Letter] = relationship(back_populates="claims", lazy="raise")


class Source(Timestamped, Base):
    """A URL about a letter, with a label."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id", ondelete="CASCADE"), index=True)
    label: Mapped[str | None] = mapped_column(String(1000))
    url: Mapped[str] = mapped_column(String(2000))

    letter: Mapped[Letter] = relationship(back_populates="sources", lazy="raise")


class Signature(Timestamped, Base):
    """Letter × actor, unique per pair. A withdrawal sets `withdrawn_on`; nothing is deleted."""

    __tablename__ = "signatures"
    __table_args__ = (
        UniqueConstraint("letter_id", "actor_id"),
        Index(None, "letter_id", "signed_on"),
        Index(None, "actor_id", "letter_id"),
        CheckConstraint("withdrawn_on IS NULL OR withdrawn_on >= signed_on", name="withdrawn_after_signed"),
        CheckConstraint(one_of("status", SIGNATURE_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id", ondelete="CASCADE"))
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id"))
    signed_on: Mapped[date] = mapped_column(Date)
    capacity: Mapped[str | None] = mapped_column(String(1000))
    affiliation: Mapped[str | None] = mapped_column(String(1000))
    position: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str | None] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(20), default="confirmed")
    withdrawn_on: Mapped[date | None] = mapped_column(Date)

    letter: Mapped[Letter] = relationship(lazy="raise")
    actor: Mapped[Actor] = relationship(lazy="raise")


class Recipient(Timestamped, Base):
    """Letter × actor in a role (`to`, `cc`), with the capacity they were addressed in."""

    __tablename__ = "recipients"
    __table_args__ = (
        UniqueConstraint("letter_id", "actor_id", "role"),
        CheckConstraint(one_of("role", RECIPIENT_ROLES), name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id", ondelete="CASCADE"))
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id"), index=True)
    role: Mapped[str] = mapped_column(String(10), default="to")
    capacity: Mapped[str | None] = mapped_column(String(1000))

    letter: Mapped[Letter] = relationship(lazy="raise")
    actor: Mapped[Actor] = relationship(lazy="raise")


class Event(Timestamped, Base):
    """A dated event of a letter or of a campaign: published, delivered, response, debated, other."""

    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint("letter_id IS NOT NULL OR campaign_id IS NOT NULL", name="has_owner"),
        CheckConstraint(one_of("kind", EVENT_KINDS), name="kind"),
        Index(None, "letter_id", "date"),
        Index(None, "campaign_id", "date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int | None] = mapped_column(ForeignKey("letters.id", ondelete="CASCADE"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    date: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(2000))
