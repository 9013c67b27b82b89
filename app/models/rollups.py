from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, ForeignKey, Integer, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class LetterRollup(Base):
    """Signatures of a letter made (`new`) and withdrawn (`withdrawn`) on one day, per
    combination of what the breakdowns group by: the actor's kind, country and org type, and the
    body and party of the membership valid on the day of the signature. Maintained in the same
    transaction as every write that changes them (app/rollups.py), so counts and timelines sum a
    few rows instead of reading every signature. Absent values are stored as '' and 0 so the
    combination can be a primary key."""

    __tablename__ = "letter_rollups"
    __table_args__ = (
        PrimaryKeyConstraint("letter_id", "day", "kind", "country", "org_type", "body_id", "party_id"),
    )

    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    org_type: Mapped[str] = mapped_column(String(30))
    body_id: Mapped[int] = mapped_column(Integer)
    party_id: Mapped[int] = mapped_column(Integer)
    new: Mapped[int] = mapped_column(Integer)
    withdrawn: Mapped[int] = mapped_column(Integer)


class RegistryVersion(Base):
    """One row: a version bumped by the writes that change what letters show without being
    writes to those letters (a seat changes its body's member count, the denominator of every
    letter's `share_of_body`; a body's or party's name is a label of their breakdowns). A
    letter's HTTP validator is its own `version` and this one (app/http/validators.py), so a
    signature written to one letter leaves the others' kept reads and 304s alone."""

    __tablename__ = "registry_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
