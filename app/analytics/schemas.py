"""HTTP-only shapes: query parameters shared by the overlap routes (and charts) and the
co-signatory item; the other responses are the typed results themselves."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from app.actors.schemas import ActorOut
from app.schemas import Output

# The letters of an overlap: at most 50 slugs of at most 200 characters, comma-separated.
LettersQuery = Annotated[
    str | None,
    Query(
        max_length=10_100,
        pattern=r"^[A-Za-z0-9_, -]*$",
        description="2 to 50 letter slugs, comma-separated, in the order wanted.",
    ),
]
CampaignQuery = Annotated[
    str | None,
    Query(
        max_length=200,
        pattern=r"^[A-Za-z0-9_ -]*$",
        description="Take the campaign's letters instead of `letters`.",
    ),
]


class CoSignatoryOut(Output):
    actor: ActorOut
    shared_letters: int
