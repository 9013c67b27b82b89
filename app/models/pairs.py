from __future__ import annotations

from sqlalchemy import ForeignKey, Index, Integer, PrimaryKeyConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class LetterPair(Base):
    """How many actors signed both letters of a pair (`letter_a` < `letter_b`), counting only
    signatures that still count (not withdrawn). Maintained in the same transaction as every
    write that changes them (app/pairs.py), so a pairwise overlap reads one row instead of
    joining two letters' signatures. A row may hold 0 (a pair whose last common signatory
    withdrew): the same as no row."""

    __tablename__ = "letter_pairs"
    __table_args__ = (
        PrimaryKeyConstraint("letter_a", "letter_b"),
        Index(None, "letter_b"),
    )

    letter_a: Mapped[int] = mapped_column(ForeignKey("letters.id", ondelete="CASCADE"))
    letter_b: Mapped[int] = mapped_column(ForeignKey("letters.id", ondelete="CASCADE"))
    common: Mapped[int] = mapped_column(Integer)
