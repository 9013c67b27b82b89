"""Response shapes that exist only over HTTP (the others are the typed results themselves)."""

from __future__ import annotations

from app.actors.schemas import ActorOut
from app.schemas import Output


class CoSignatoryOut(Output):
    actor: ActorOut
    shared_letters: int
