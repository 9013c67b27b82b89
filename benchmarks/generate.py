"""Deterministic generator of the benchmark registry, written as the dump `undersigned import DIR` reads.

At `--scale 1` it writes 2,000 letters, 200,000 actors (60% persons, all seated in one body with
a party; 40% organisations with countries and kinds) and 2,000,000 signatures. Letter sizes are
Zipf-like: size_k ~ A / k^e with A = 180,000 (the largest letter) and the exponent e solved so the
sizes sum to 2,000,000. Signing dates spread over a 60-day window; about 1% of the signatures are
withdrawn. The same seed and scale always give the same files, byte for byte.

Rows are written as they are made (the only large thing held in memory is one letter's sample of
actor refs), so any scale runs in constant memory.

    python benchmarks/generate.py --scale 0.01 --out /tmp/bench-dump

Besides the CSV files it writes `<out>.manifest.json` (next to the folder, not in it, so the
dump stays exactly the SPEC §4 layout): sizes, the slugs of the largest letters, the window.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from app import vocabulary
from app.imports.dump.files import COLUMNS

FULL_LETTERS = 2_000
FULL_ACTORS = 200_000
FULL_SIGNATURES = 2_000_000
FULL_LARGEST = 180_000
PERSON_SHARE = 0.6
WINDOW_START = date(2024, 3, 1)
WINDOW_DAYS = 60
SEAT_START = date(2023, 12, 1)  # everybody's (first) seat starts before the window
BODY_SLUG = "bench-parliament"
LETTER_SLUG = "bench-letter-{:04d}"

PARTIES = [
    ("bench-red", "Red Party", 0.27),
    ("bench-blue", "Blue Party", 0.25),
    ("bench-yellow", "Yellow Party", 0.13),
    ("bench-green", "Green Party", 0.11),
    ("bench-purple", "Purple Party", 0.09),
    ("bench-orange", "Orange Party", 0.07),
    ("bench-grey", "Grey Party", 0.05),
    ("bench-white", "White Party", 0.03),
]
N_CAMPAIGNS = 20
COUNTRIES = [
    "GB",
    "US",
    "FR",
    "DE",
    "NL",
    "BE",
    "CH",
    "SE",
    "NO",
    "DK",
    "FI",
    "IE",
    "ES",
    "PT",
    "IT",
    "AT",
    "PL",
    "CZ",
    "HU",
    "RO",
    "GR",
    "TR",
    "CA",
    "AU",
    "NZ",
    "JP",
    "KR",
    "TW",
    "IN",
    "PK",
    "BD",
    "LK",
    "NP",
    "ID",
    "MY",
    "PH",
    "TH",
    "VN",
    "SG",
    "ZA",
    "NG",
    "KE",
    "GH",
    "ET",
    "UG",
    "TZ",
    "EG",
    "MA",
    "TN",
    "BR",
    "AR",
    "CL",
    "CO",
    "PE",
    "MX",
    "UA",
    "GE",
    "AM",
    "KZ",
    "MN",
]
# How common each org type is, keyed by the types of the vocabulary (every one, no other).
ORG_TYPE_WEIGHTS = {
    "ngo": 0.55,
    "union": 0.10,
    "faith": 0.08,
    "academic": 0.12,
    "business": 0.06,
    "government": 0.02,
    "intergovernmental": 0.01,
    "other": 0.06,
}
if set(ORG_TYPE_WEIGHTS) != set(vocabulary.ORG_TYPES):
    raise SystemExit(f"ORG_TYPE_WEIGHTS {sorted(ORG_TYPE_WEIGHTS)} must weigh {vocabulary.ORG_TYPES}")
ORG_TYPES = [(org_type, ORG_TYPE_WEIGHTS[org_type]) for org_type in vocabulary.ORG_TYPES]
SURNAMES = [
    "Abbott",
    "Baker",
    "Carter",
    "Dawson",
    "Ellis",
    "Fraser",
    "Graham",
    "Hughes",
    "Irving",
    "Jensen",
    "Khan",
    "Lopez",
    "Murray",
    "Novak",
    "Owens",
    "Patel",
    "Quinn",
    "Reyes",
    "Singh",
    "Turner",
    "Underwood",
    "Vargas",
    "Walsh",
    "Xu",
    "Young",
    "Zimmer",
]
ORG_WORDS = [
    "Rights",
    "Watch",
    "Forum",
    "Alliance",
    "Network",
    "Centre",
    "Council",
    "Initiative",
    "Foundation",
    "Institute",
    "Coalition",
    "Union",
    "Society",
    "Action",
    "Project",
    "Trust",
    "League",
    "Association",
    "Collective",
    "Observatory",
]


def plan_sizes(n_letters: int, total: int, largest: int, n_actors: int) -> tuple[list[int], float]:
    """Zipf-like sizes (descending) that sum exactly to `total`, the first near `largest`."""
    largest = max(1, min(largest, n_actors))

    def raw_sum(e: float) -> float:
        return sum(largest / k**e for k in range(1, n_letters + 1))

    lo, hi = 0.0, 5.0
    if raw_sum(lo) <= total:  # not enough letters for the total even when all are the largest
        e = 0.0
    else:
        for _ in range(100):
            mid = (lo + hi) / 2
            if raw_sum(mid) > total:
                lo = mid
            else:
                hi = mid
        e = (lo + hi) / 2
    sizes = [max(1, min(n_actors, round(largest / k**e))) for k in range(1, n_letters + 1)]
    diff = total - sum(sizes)
    # Spread the rounding error over letters 2.. (the largest stays where it was put).
    k = 1
    guard = 0
    while diff != 0 and guard < 100 * n_letters:
        i = 1 + (k - 1) % max(1, n_letters - 1) if n_letters > 1 else 0
        if diff > 0 and sizes[i] < min(n_actors, sizes[i - 1] if i > 0 else n_actors):
            sizes[i] += 1
            diff -= 1
        elif diff < 0 and sizes[i] > 1 and (i == n_letters - 1 or sizes[i] > sizes[i + 1]):
            sizes[i] -= 1
            diff += 1
        k += 1
        guard += 1
    return sizes, e


def weighted(rng: random.Random, table: list[tuple[str, float]]) -> str:
    r = rng.random() * sum(w for _, w in table)
    for value, w in table:
        r -= w
        if r <= 0:
            return value
    return table[-1][0]


def generate(out: Path, scale: float, seed: int = 20240301, quiet: bool = False) -> dict[str, Any]:
    if scale <= 0:
        raise ValueError("scale must be > 0")
    started = time.perf_counter()
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)

    n_actors = max(50, round(FULL_ACTORS * scale))
    n_signatures = max(100, round(FULL_SIGNATURES * scale))
    largest = max(10, round(FULL_LARGEST * scale))
    # Keep the 2,000 letters (the letter list and the Zipf tail look the same at any scale) unless
    # there are too few signatures to give each letter a handful.
    n_letters = FULL_LETTERS if n_signatures >= 5 * FULL_LETTERS else max(4, n_signatures // 5)
    sizes, exponent = plan_sizes(n_letters, n_signatures, largest, n_actors)
    window_end = WINDOW_START + timedelta(days=WINDOW_DAYS - 1)

    def writer(name: str) -> tuple[Any, Any]:
        """A file of the dump with the app's header (`COLUMNS`); rows give every column."""
        f = (out / name).open("w", newline="", encoding="utf-8")
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS[name])
        return f, w

    # bodies, parties, campaigns
    f, w = writer("bodies.csv")
    w.writerow([BODY_SLUG, "Bench Parliament", "GB"])
    f.close()
    f, w = writer("parties.csv")
    for slug, name, _ in PARTIES:
        w.writerow([slug, name, "GB"])
    f.close()
    f, w = writer("campaigns.csv")
    for c in range(1, N_CAMPAIGNS + 1):
        w.writerow([f"bench-campaign-{c:02d}", f"Bench campaign {c:02d}", f"Generated campaign number {c}."])
    f.close()

    # actors and memberships
    party_table = [(slug, weight) for slug, _, weight in PARTIES]
    persons = organisations = memberships = switches = 0
    fa, wa = writer("actors.csv")
    fm, wm = writer("memberships.csv")
    for ref in range(1, n_actors + 1):
        if rng.random() < PERSON_SHARE:
            persons += 1
            surname = SURNAMES[rng.randrange(len(SURNAMES))]
            given = f"Person {ref:06d}"
            wa.writerow(
                [ref, "person", f"{given} {surname}", f"{surname}, {given}", "GB", "", f"benchref:{ref}"]
            )
            party = weighted(rng, party_table)
            constituency = f"Constituency {rng.randrange(1, 651):03d}"
            if rng.random() < 0.05:  # changed party inside the window
                switch = WINDOW_START + timedelta(days=rng.randrange(1, WINDOW_DAYS))
                new_party = weighted(rng, party_table)
                while new_party == party:
                    new_party = weighted(rng, party_table)
                wm.writerow([ref, BODY_SLUG, party, constituency, SEAT_START, switch - timedelta(days=1)])
                wm.writerow([ref, BODY_SLUG, new_party, constituency, switch, ""])
                memberships += 2
                switches += 1
            else:
                wm.writerow([ref, BODY_SLUG, party, constituency, SEAT_START, ""])
                memberships += 1
        else:
            organisations += 1
            word = ORG_WORDS[rng.randrange(len(ORG_WORDS))]
            org_type = weighted(rng, ORG_TYPES)
            country = COUNTRIES[min(len(COUNTRIES) - 1, int(rng.paretovariate(1.2)) - 1)]
            name = f"Organisation {ref:06d} {word}"
            wa.writerow([ref, "organisation", name, name, country, org_type, ""])
    fa.close()
    fm.close()

    # letters: slug number = size rank, so bench-letter-0001 is the largest
    published: list[date] = []
    fl, wl = writer("letters.csv")
    for k in range(1, n_letters + 1):
        # The largest letters open at the start of the window so their timelines span it.
        day = rng.randrange(0, 3) if k <= 5 else int(min(WINDOW_DAYS - 1, rng.random() ** 1.5 * WINDOW_DAYS))
        pub = WINDOW_START + timedelta(days=day)
        published.append(pub)
        size = sizes[k - 1]
        claimed = size if rng.random() < 0.5 else max(1, round(size * rng.uniform(0.9, 1.15)))
        campaign = ""
        if k <= 2:
            campaign = "bench-campaign-01"
        elif rng.random() < 0.3:
            campaign = f"bench-campaign-{rng.randrange(1, N_CAMPAIGNS + 1):02d}"
        wl.writerow(
            [
                LETTER_SLUG.format(k),
                f"Bench letter {k:04d}",
                f"Generated letter of rank {k} ({size} signatures).",
                "en",
                pub,
                "published",
                claimed,
                campaign,
                "",  # body
            ]
        )
    fl.close()

    # signatures, letter by letter
    withdrawn = 0
    written = 0
    last_day = WINDOW_START
    fs, ws = writer("signatures.csv")
    population = range(1, n_actors + 1)
    days = [WINDOW_START + timedelta(days=d) for d in range(WINDOW_DAYS + 30)]
    for k in range(1, n_letters + 1):
        slug = LETTER_SLUG.format(k)
        pub = published[k - 1]
        room = (window_end - pub).days
        offset = (pub - WINDOW_START).days
        refs = rng.sample(population, sizes[k - 1])
        rows = []
        for position, ref in enumerate(refs, start=1):
            # Skewed delay: most sign in the first days, a long tail to the end of the window.
            delay = min(room, int(rng.expovariate(1 / 7.0)))
            signed = days[offset + delay]
            withdrawn_on: date | str = ""
            if rng.random() < 0.01:
                withdrawn_on = days[offset + delay + rng.randrange(0, 15)]
                withdrawn += 1
            rows.append((slug, ref, signed, "", "", position, "confirmed", withdrawn_on, ""))
            if signed > last_day:
                last_day = signed
        ws.writerows(rows)
        written += len(rows)
    fs.close()

    manifest: dict[str, Any] = {
        "seed": seed,
        "scale": scale,
        "body": BODY_SLUG,
        "parties": len(PARTIES),
        "campaigns": N_CAMPAIGNS,
        "actors": n_actors,
        "persons": persons,
        "organisations": organisations,
        "memberships": memberships,
        "party_switches": switches,
        "letters": n_letters,
        "signatures": written,
        "withdrawn": withdrawn,
        "zipf_exponent": round(exponent, 4),
        "largest_letters": [
            {"slug": LETTER_SLUG.format(k), "signatures": sizes[k - 1]}
            for k in range(1, min(5, n_letters) + 1)
        ],
        "window": [WINDOW_START.isoformat(), window_end.isoformat()],
        "last_signed_on": last_day.isoformat(),
        "seconds": round(time.perf_counter() - started, 2),
    }
    manifest_path(out).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    if not quiet:
        print(
            f"generated in {manifest['seconds']} s into {out}: {n_actors:,} actors ({persons:,} persons, "
            f"{organisations:,} organisations), {memberships:,} memberships ({switches:,} party switches), "
            f"{n_letters:,} letters, {written:,} signatures ({withdrawn:,} withdrawn); largest "
            f"{sizes[0]:,}, second {sizes[1] if n_letters > 1 else 0:,}; Zipf exponent {exponent:.3f}",
            file=sys.stderr,
        )
    return manifest


def manifest_path(out: Path) -> Path:
    return out.parent / f"{out.name}.manifest.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 2M signatures; 0.01 for a quick run")
    parser.add_argument("--out", type=Path, required=True, help="folder for the CSV files")
    parser.add_argument("--seed", type=int, default=20240301)
    args = parser.parse_args(argv)
    manifest = generate(args.out, args.scale, args.seed)
    print(json.dumps(manifest))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
