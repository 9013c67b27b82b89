"""The import scenarios: one CSV of `--import-rows` rows through the import endpoint, all new
actors (`import_csv`) or a list as campaigns re-import it (`import_csv_mixed`)."""

from __future__ import annotations

import contextlib
import csv
import io
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from generate import BODY_SLUG, PARTIES
from harness import TARGETS, Server

if TYPE_CHECKING:
    from run import Run


def mixed_import_csv(dump: Path, rows: int) -> str:
    """A CSV of `rows` rows (`import_csv_mixed`): three in five name an actor of the dump
    (every k-th, in turn by name alone, by name and its `benchref` identifier, or — persons — by
    name with the body and party of their first seat), two in five are new: organisations with
    a country, a type and a website, and persons with a seat. Deterministic."""
    with (dump / "actors.csv").open(newline="", encoding="utf-8") as f:
        actors = list(csv.DictReader(f))
    with (dump / "memberships.csv").open(newline="", encoding="utf-8") as f:
        seats: dict[str, dict[str, str]] = {}
        for seat in csv.DictReader(f):
            seats.setdefault(seat["actor_ref"], seat)
    known = rows * 3 // 5
    step = max(1, len(actors) // max(1, known))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "kind", "country", "org_type", "identifiers", "body", "party"])
    for n, actor in enumerate(actors[::step][:known]):
        row = [actor["name"], actor["kind"], actor["country"], actor["org_type"], "", "", ""]
        seat = seats.get(actor["ref"])
        if n % 3 == 1:
            row[4] = actor["identifiers"]
        elif n % 3 == 2 and seat:
            row[5:7] = [seat["body"], seat["party"]]
        writer.writerow(row)
    for n in range(rows - min(known, len(actors[::step]))):
        if n % 3:
            country = ("GB", "FR", "DE", "US")[n % 4]
            website = f"https://mixed-{n:06d}.example.org"
            writer.writerow(
                [
                    f"Mixed Organisation {n:06d} Wren",
                    "organisation",
                    country,
                    "ngo",
                    f"website:{website}",
                    "",
                    "",
                ]
            )
        else:
            writer.writerow([f"Mixed Person {n:06d} Osei", "person", "GB", "", "", BODY_SLUG, PARTIES[0][0]])
    return out.getvalue()


def import_csv(run: Run, server: Server, workers: int, name: str) -> dict[str, Any]:
    """A new letter, then one CSV of `--import-rows` rows through the import endpoint: all
    new actors (`import_csv`) or, as a campaign's list re-imported with additions looks,
    mostly actors the registry has (`import_csv_mixed`, see `mixed_import_csv`)."""
    rows = run.args.import_rows
    slug = f"bench-{name.replace('_', '-')}-w{workers}"
    headers = {"Authorization": f"Bearer {run.key}"} if run.key else {}
    if name == "import_csv_mixed":
        body = mixed_import_csv(run.dump, rows).encode()
    else:
        lines = ["name,kind"]
        for n in range(1, rows + 1):
            if n % 3:
                lines.append(f"Imported Organisation {n:06d} Heron,organisation")
            else:
                lines.append(f"Imported Person {n:06d} Lindqvist,person")
        body = ("\n".join(lines) + "\n").encode()
    with httpx.Client(base_url=server.base_url, timeout=900.0, trust_env=False) as client:
        created = client.post(
            "/v1/letters",
            json={
                "slug": slug,
                "title": f"Bench import ({rows} rows)",
                "published_on": run.manifest["window"][0],
            },
            headers=headers,
        )
        if created.status_code != 201:
            raise RuntimeError(f"POST /v1/letters -> {created.status_code}: {created.text[:300]}")
        t0 = time.perf_counter()
        response = client.post(
            f"/v1/letters/{slug}/signatures/import",
            content=body,
            headers={**headers, "Content-Type": "text/csv"},
        )
        seconds = time.perf_counter() - t0
    out: dict[str, Any] = {
        "rows": rows,
        "bytes": len(body),
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds, 1),
        "status": response.status_code,
        "target": TARGETS[name],
    }
    with contextlib.suppress(ValueError):
        out["summary"] = response.json().get("summary")
    if response.status_code != 200:
        out.update(ok=False, error=f"{response.status_code}: {response.text[:300]}", met=False)
    else:
        out["met"] = rows / seconds >= 20_000
    return out
