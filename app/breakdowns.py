"""The five breakdowns of signatures, and what each one is of: an attribute of the signatory,
or of the seat it held on the signing day (`app.seats`). One table, read by everything that
groups, filters, lists or draws by breakdown: the counts' and the reach's lists (`by_<key>`)
and their CSV (`breakdown` column), the signatures' and the letter page's filters
(`?<key>=`), the charts (`/charts/<key>.svg` and their titles) and the page's filter form."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from app.models import Actor, Body, Party

Key = Literal["kind", "body", "party", "country", "org_type"]


@dataclass(frozen=True)
class Breakdown:
    key: Key  # in URLs, filters, the CSV and the grouped rows
    name: str  # in sentences and chart titles
    heading: str  # above a column or a filter
    attribute: Any  # what it groups by: an actor's column, or the slug of the seat's body or party

    @property
    def of_seat(self) -> bool:
        """Taken from the seat held on the signing day (else from the actor)."""
        return self.attribute.class_ in (Body, Party)

    @property
    def model(self) -> type[Actor] | type[Body] | type[Party]:
        return self.attribute.class_  # type: ignore[no-any-return]

    def entries(self, result: Any) -> Sequence[Any]:
        """The result's list of entries for this breakdown (`result.by_<key>`)."""
        return getattr(result, f"by_{self.key}")  # type: ignore[no-any-return]


BREAKDOWNS: tuple[Breakdown, ...] = (
    Breakdown("kind", "kind", "Kind", Actor.kind),
    Breakdown("body", "body", "Body", Body.slug),
    Breakdown("party", "party", "Party", Party.slug),
    Breakdown("country", "country", "Country", Actor.country),
    Breakdown("org_type", "type of organisation", "Type", Actor.org_type),
)
BY_KEY: dict[str, Breakdown] = {b.key: b for b in BREAKDOWNS}
