from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, Timestamped

if TYPE_CHECKING:
    from app.models.letters import Letter


class Campaign(Timestamped, Base):
    """A named group of letters, e.g. "Xinjiang 2020"."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)

    letters: Mapped[list[Letter]] = relationship(
        back_populates="campaign", lazy="raise", order_by="Letter.id"
    )
