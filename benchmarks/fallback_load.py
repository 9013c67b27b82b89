"""Stop-gap loader of a benchmark dump, used by run.py ONLY when `undersigned import DIR` fails.

It writes the rows straight into an empty, migrated database with SQLAlchemy Core (actor ids =
the dump's refs), computing the derived columns with the app's own functions, so the HTTP
scenarios have data to run against. It is not the product's load path: its time is never
reported as the bulk-load figure.

    DATABASE_URL=sqlite:///bench.db python benchmarks/fallback_load.py DIR
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text

from app.config import get_settings
from app.db.engine import create_engine_for
from app.models import Actor, Body, Campaign, Identifier, Letter, Membership, Party, Signature
from app.text import match_name, search_text

BATCH = 10_000


def rows(path: Path) -> Iterator[dict[str, str | None]]:
    if not path.exists():
        return
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            yield {k: (v if v != "" else None) for k, v in row.items()}


def day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def batched(items: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for item in items:
        batch.append(item)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def load(folder: Path) -> None:
    engine = create_engine_for(get_settings())
    now = datetime.now(UTC)
    stamp = {"created_at": now, "updated_at": now}
    with engine.begin() as conn:
        for model, name in ((Body, "bodies.csv"), (Party, "parties.csv")):
            for r in rows(folder / name):
                conn.execute(
                    insert(model).values(slug=r["slug"], name=r["name"], country=r["country"], **stamp)
                )
        for r in rows(folder / "campaigns.csv"):
            conn.execute(
                insert(Campaign).values(slug=r["slug"], name=r["name"], description=r["description"], **stamp)
            )
        bodies = dict(conn.execute(select(Body.slug, Body.id)).tuples().all())
        parties = dict(conn.execute(select(Party.slug, Party.id)).tuples().all())
        campaigns = dict(conn.execute(select(Campaign.slug, Campaign.id)).tuples().all())

        identifiers: list[dict[str, Any]] = []

        def actor_rows() -> Iterator[dict[str, Any]]:
            for r in rows(folder / "actors.csv"):
                ref = int(r["ref"] or 0)
                for pair in (r.get("identifiers") or "").split(";"):
                    if ":" in pair:
                        scheme, value = pair.split(":", 1)
                        identifiers.append({"actor_id": ref, "scheme": scheme, "value": value})
                yield {
                    "id": ref,
                    "kind": r["kind"],
                    "name": r["name"],
                    "sort_name": r.get("sort_name"),
                    "country": r.get("country"),
                    "org_type": r.get("org_type"),
                    "match_name": match_name(r["name"] or ""),
                    "search_text": search_text(r["name"], r.get("sort_name")),
                    **stamp,
                }

        for batch in batched(actor_rows()):
            conn.execute(insert(Actor), batch)
            if identifiers:
                conn.execute(insert(Identifier), identifiers)
                identifiers.clear()

        def membership_rows() -> Iterator[dict[str, Any]]:
            for r in rows(folder / "memberships.csv"):
                yield {
                    "actor_id": int(r["actor_ref"] or 0),
                    "body_id": bodies[r["body"]],
                    "party_id": parties[r["party"]] if r.get("party") else None,
                    "constituency": r.get("constituency"),
                    "start_date": day(r["start_date"]),
                    "end_date": day(r.get("end_date")),
                    **stamp,
                }

        for batch in batched(membership_rows()):
            conn.execute(insert(Membership), batch)

        def letter_rows() -> Iterator[dict[str, Any]]:
            for r in rows(folder / "letters.csv"):
                yield {
                    "slug": r["slug"],
                    "title": r["title"],
                    "summary": r.get("summary"),
                    "language": r.get("language"),
                    "published_on": day(r.get("published_on")),
                    "status": r.get("status") or "published",
                    "claimed_signatory_count": int(r["claimed_signatory_count"])
                    if r.get("claimed_signatory_count")
                    else None,
                    "campaign_id": campaigns[r["campaign"]] if r.get("campaign") else None,
                    "search_text": search_text(r["title"], r.get("summary")),
                    "version": 1,
                    **stamp,
                }

        for batch in batched(letter_rows()):
            conn.execute(insert(Letter), batch)
        letters = dict(conn.execute(select(Letter.slug, Letter.id)).tuples().all())

        def signature_rows() -> Iterator[dict[str, Any]]:
            for r in rows(folder / "signatures.csv"):
                yield {
                    "letter_id": letters[r["letter"]],
                    "actor_id": int(r["actor_ref"] or 0),
                    "signed_on": day(r["signed_on"]),
                    "capacity": r.get("capacity"),
                    "affiliation": r.get("affiliation"),
                    "position": int(r["position"]) if r.get("position") else None,
                    "status": r.get("status") or "confirmed",
                    "withdrawn_on": day(r.get("withdrawn_on")),
                    **stamp,
                }

        for batch in batched(signature_rows()):
            conn.execute(insert(Signature), batch)

        if conn.dialect.name == "postgresql":
            conn.execute(
                text("SELECT setval(pg_get_serial_sequence('actors', 'id'), (SELECT max(id) FROM actors))")
            )
    engine.dispose()


if __name__ == "__main__":
    load(Path(sys.argv[1]))
    print("loaded", file=sys.stderr)
