from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, selectinload

from app.models.base import Base, Timestamped, UTCDateTime, utcnow
from app.vocabulary import ACTOR_KINDS, ORG_TYPES, one_of


class Actor(Timestamped, Base):
    """Anyone who signs or receives a letter: a person or an organisation (Popolo)."""

    __tablename__ = "actors"
    __table_args__ = (
        CheckConstraint(one_of("kind", ACTOR_KINDS), name="kind"),
        CheckConstraint(one_of("org_type", ORG_TYPES), name="org_type"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    name: Mapped[str] = mapped_column(String(1000))
    sort_name: Mapped[str | None] = mapped_column(String(1000))
    country: Mapped[str | None] = mapped_column(String(2), index=True)
    org_type: Mapped[str | None] = mapped_column(String(30), index=True)
    # Normalised forms kept alongside the name as given: `match_name` for entity resolution
    # (imports), `search_text` for the `q` filter.
    match_name: Mapped[str] = mapped_column(String(1000), index=True)
    search_text: Mapped[str] = mapped_column(String(2000))
    # Where spellings and short forms of a name meet (`app.names.variant_key`): possible matches.
    variant_key: Mapped[str] = mapped_column(String(1000), index=True, server_default="")

    identifiers: Mapped[list[Identifier]] = relationship(
        back_populates="actor", lazy="raise", cascade="all, delete-orphan", order_by="Identifier.id"
    )
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="actor", lazy="raise", cascade="all, delete-orphan", order_by="Membership.start_date"
    )
    aliases: Mapped[list[ActorAlias]] = relationship(
        back_populates="actor", lazy="raise", cascade="all, delete-orphan", order_by="ActorAlias.id"
    )


class ActorAlias(Timestamped, Base):
    """Another name of an actor: a former name, a translation, an acronym, a spelling. Matching
    and search use them; a merge keeps the merged actors' names as aliases."""

    __tablename__ = "actor_aliases"
    __table_args__ = (UniqueConstraint("actor_id", "match_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(1000))
    match_name: Mapped[str] = mapped_column(String(1000), index=True)
    variant_key: Mapped[str] = mapped_column(String(1000), index=True)

    actor: Mapped[Actor] = relationship(back_populates="aliases", lazy="raise")


class ActorRedirect(Base):
    """An actor id that was merged into another: its URLs answer 301 to `actor_id`, and an
    import naming it resolves to `actor_id`."""

    __tablename__ = "actor_redirects"

    old_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), index=True)
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DistinctActors(Base):
    """A pair of actors that a person decided are not one: the review queue leaves it out."""

    __tablename__ = "distinct_actors"
    __table_args__ = (CheckConstraint("actor_a < actor_b", name="ordered"),)

    actor_a: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), primary_key=True)
    actor_b: Mapped[int] = mapped_column(
        ForeignKey("actors.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    decided_by: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Identifier(Base):
    """An external identifier of an actor: `(scheme, value)` is unique across the registry."""

    __tablename__ = "identifiers"
    __table_args__ = (UniqueConstraint("scheme", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), index=True)
    scheme: Mapped[str] = mapped_column(String(50))
    value: Mapped[str] = mapped_column(String(500))

    actor: Mapped[Actor] = relationship(back_populates="identifiers", lazy="raise")


class Seated(Timestamped):
    """What a seat is in (a body) or for (a party): known by a unique slug, named, and of a
    country or none. One shape, so that the two are written, filtered and dumped alike."""

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(500))
    country: Mapped[str | None] = mapped_column(String(2))


class Body(Seated, Base):
    """A legislature or chamber: House of Commons, House of Lords, European Parliament, …"""

    __tablename__ = "bodies"


class Party(Seated, Base):
    """A political party."""

    __tablename__ = "parties"


class Membership(Timestamped, Base):
    """A person's dated seat in a body, for a party (optional: independents, crossbenchers)."""

    __tablename__ = "memberships"
    __table_args__ = (Index(None, "actor_id", "start_date", "end_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    body_id: Mapped[int] = mapped_column(ForeignKey("bodies.id"), index=True)
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"), index=True)
    constituency: Mapped[str | None] = mapped_column(String(500))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)

    actor: Mapped[Actor] = relationship(back_populates="memberships", lazy="raise")
    body: Mapped[Body] = relationship(lazy="raise")
    party: Mapped[Party | None] = relationship(lazy="raise")


# What an actor's resource shows beyond its columns, to load with it (relationships raise on
# lazy loads): its identifiers and aliases.
ACTOR_LOADS = (selectinload(Actor.identifiers), selectinload(Actor.aliases))
