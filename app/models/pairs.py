from __future__ import annotations

from sqlalchemy import Index, Integer, PrimaryKeyConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class LetterPair(Base):
    """How many actors signed both letters of a pair (`letter_a` < `letter_b`), and on the
    diagonal (`letter_a` = `letter_b`) how many signed the letter, counting only signatures
    that still count (not withdrawn). Maintained in the same transaction as every
    write that changes them (app/pairs.py), so a pairwise overlap reads three rows instead of
    joining two letters' signatures. A row may hold 0 (a pair whose last common signatory
    withdrew): the same as no row. No foreign keys: rows derived from the signatures, rebuilt
    from them in one statement by a load (checking a key per row would cost it more than the
    rest of the rebuild), and taken away with their letter by `app.pairs.forget_letter`."""

    __tablename__ = "letter_pairs"
    __table_args__ = (
        PrimaryKeyConstraint("letter_a", "letter_b"),
        Index(None, "letter_b"),
    )

    letter_a: Mapped[int] = mapped_column(Integer)
    letter_b: Mapped[int] = mapped_column(Integer)
    common: Mapped[int] = mapped_column(Integer)
