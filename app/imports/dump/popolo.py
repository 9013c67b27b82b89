"""Popolo JSON (persons, organizations, memberships), written from the registry and read as a dump."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Invalid
from app.imports.dump.export import actor_rows, stream, table_rows
from app.imports.dump.files import Row, RowSource
from app.imports.parsing import format_identifiers, parse_identifiers
from app.models import (
    Body,
    Party,
)
from app.vocabulary import ORG_TYPES

BODY_CLASSIFICATIONS = ("legislature", "chamber")
PARTY_CLASSIFICATION = "party"


def export_popolo(session: Session, out: IO[str]) -> dict[str, int]:
    """Write a Popolo document: persons, organizations (organisation actors, bodies as
    `legislature`, parties as `party`), memberships. Streams, one item per line."""
    counts = {"persons": 0, "organizations": 0, "memberships": 0}
    out.write('{"persons": [')
    first = True
    for kind, key in (("person", "persons"), ("organisation", "organizations")):
        if kind == "organisation":
            out.write('\n], "organizations": [')
            first = True
        for ref, _kind, name, sort_name, country, org_type, identifiers in actor_rows(session, kind):
            item: dict[str, Any] = {"id": f"actor-{ref}", "name": name}
            if sort_name:
                item["sort_name"] = sort_name
            if identifiers:
                item["identifiers"] = [
                    {"scheme": s, "identifier": v} for s, v in parse_identifiers(identifiers)
                ]
            if country:
                item["area_id"] = country
            if org_type:
                item["classification"] = org_type
            out.write(("" if first else ",") + "\n" + json.dumps(item, ensure_ascii=False))
            first = False
            counts[key] += 1
    for model, classification in ((Body, "legislature"), (Party, PARTY_CLASSIFICATION)):
        prefix = "body" if model is Body else "party"
        for slug, name, country in stream(
            session, select(model.slug, model.name, model.country).order_by(model.id)
        ):
            item = {"id": f"{prefix}-{slug}", "name": name, "classification": classification}
            if country:
                item["area_id"] = country
            out.write(("" if first else ",") + "\n" + json.dumps(item, ensure_ascii=False))
            first = False
            counts["organizations"] += 1
    out.write('\n], "memberships": [')
    first = True
    for actor_id, body_slug, party_slug, constituency, start, end in table_rows(session, "memberships.csv"):
        item = {"person_id": f"actor-{actor_id}", "organization_id": f"body-{body_slug}"}
        if party_slug:
            item["on_behalf_of_id"] = f"party-{party_slug}"
        if constituency:
            item["area"] = {"name": constituency}
        item["start_date"] = start.isoformat()
        if end:
            item["end_date"] = end.isoformat()
        out.write(("" if first else ",") + "\n" + json.dumps(item, ensure_ascii=False))
        first = False
        counts["memberships"] += 1
    out.write("\n]}\n")
    return counts


def popolo_source(document: dict[str, Any]) -> RowSource:
    """A dump `Source` over a Popolo document: persons and organizations become actors
    (organizations classified `legislature`/`chamber` become bodies, `party` parties)."""
    persons = document.get("persons") or []
    organizations = document.get("organizations") or []
    memberships = document.get("memberships") or []
    if not all(isinstance(x, list) for x in (persons, organizations, memberships)):
        raise Invalid("persons, organizations and memberships must be arrays", field="popolo")
    bodies = {
        o.get("id"): o
        for o in organizations
        if isinstance(o, dict) and o.get("classification") in BODY_CLASSIFICATIONS
    }
    parties = {
        o.get("id"): o
        for o in organizations
        if isinstance(o, dict) and o.get("classification") == PARTY_CLASSIFICATION
    }

    def slug_of(item: dict[str, Any], prefix: str) -> str:
        ident = str(item.get("id") or "")
        return ident[len(prefix) + 1 :] if ident.startswith(prefix + "-") else ident

    def area(item: dict[str, Any]) -> str | None:
        value = item.get("area_id")
        return value if isinstance(value, str) and len(value) == 2 else None

    def identifiers(item: dict[str, Any]) -> str | None:
        pairs = [
            (str(i.get("scheme")), str(i.get("identifier")))
            for i in item.get("identifiers") or []
            if isinstance(i, dict) and i.get("scheme") and i.get("identifier")
        ]
        return format_identifiers(pairs) or None

    def rows(name: str) -> Iterator[tuple[int, Row]] | None:
        if name in ("bodies.csv", "parties.csv"):
            table, prefix = (bodies, "body") if name == "bodies.csv" else (parties, "party")
            return (
                (n, {"slug": slug_of(o, prefix), "name": o.get("name"), "country": area(o)})
                for n, o in enumerate(table.values(), 1)
            )
        if name == "actors.csv":

            def actors() -> Iterator[tuple[int, Row]]:
                n = 0
                for kind, items in (("person", persons), ("organisation", organizations)):
                    for item in items:
                        if not isinstance(item, dict):
                            raise Invalid(f"{kind} items must be objects", field="popolo")
                        if item.get("id") in bodies or item.get("id") in parties:
                            continue
                        n += 1
                        classification = item.get("classification")
                        yield (
                            n,
                            {
                                "ref": str(item.get("id") or f"{kind}-{n}"),
                                "kind": kind,
                                "name": item.get("name"),
                                "sort_name": item.get("sort_name"),
                                "country": area(item),
                                "org_type": classification
                                if kind == "organisation" and classification in ORG_TYPES
                                else None,
                                "identifiers": identifiers(item),
                            },
                        )

            return actors()
        if name == "memberships.csv":

            def seats() -> Iterator[tuple[int, Row]]:
                for n, m in enumerate(memberships, 1):
                    if not isinstance(m, dict):
                        raise Invalid("membership items must be objects", field="popolo")
                    org = m.get("organization_id")
                    if org not in bodies:
                        continue  # a membership of a non-body organisation: not a seat
                    party = m.get("on_behalf_of_id")
                    area_value = m.get("area")
                    yield (
                        n,
                        {
                            "actor_ref": m.get("person_id"),
                            "body": slug_of(bodies[org], "body"),
                            "party": slug_of(parties[party], "party") if party in parties else None,
                            "constituency": area_value.get("name") if isinstance(area_value, dict) else None,
                            "start_date": m.get("start_date"),
                            "end_date": m.get("end_date"),
                        },
                    )

            return seats()
        return None

    return rows
