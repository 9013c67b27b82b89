"""The overlap scenarios of the benchmark suite (hooked into run.py): what maintained pair
counts and validators buy, side by side with plain SQL, and what they cost the writes.

- `overlap_50_letters` (HTTP, like the other reads): `GET /v1/overlaps` over the 50 largest
  letters, exact intersections included, kept by the letters' versions.
- plain SQL (`plain_sql`): the overlap of the two largest letters from the pair row and the
  rollups (what the service reads), the 50-letter matrix from pair rows in one statement, and
  the same matrix as a self-join of the signatures (the floor without pair counts).
- `overlap_after_write` (`after_write`): a signature added to the largest letter by an actor
  who signed the second (so the pair row moves), then at once `GET /v1/overlaps` of the two:
  the first read after a write, never answered from memory; each answer is checked (common
  grows by one per write).
- `pair_cost` (`pair_cost`): the pair statement of one signature write, timed alone in a
  transaction rolled back, for actors who signed k other letters (k from the dataset's
  spread): what an actor with many letters costs per write.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx

TARGETS = {
    "overlap_two_largest": "≥ 3,000 req/s and p99 ≤ 20 ms (1 worker)",
    "overlap_after_write": "first read after a write ≤ 10 ms (PostgreSQL, p50)",
}

# What the service reads for two letters: their diagonal rows (sizes) and their pair row.
SQL_PAIR = """
SELECT letter_a, letter_b, common FROM letter_pairs
WHERE letter_a IN (:a, :b) AND letter_b IN (:a, :b) AND common <> 0
"""


def _in(ids: list[int]) -> str:
    return ", ".join(str(int(i)) for i in ids)


def sql_matrix(ids: list[int]) -> str:
    """The matrix of `app.pairs.matrix`: sizes and pairs from the pair rows, one statement."""
    listed = _in(ids)
    return (
        "SELECT letter_a, letter_b, common FROM letter_pairs "
        f"WHERE letter_a IN ({listed}) AND letter_b IN ({listed}) AND common <> 0"
    )


def sql_matrix_join(ids: list[int]) -> str:
    """The same matrix without pair counts: a self-join of the letters' signatures."""
    listed = _in(ids)
    return (
        "SELECT x.letter_id, y.letter_id, count(*) FROM signatures x JOIN signatures y "
        "ON y.actor_id = x.actor_id AND y.letter_id >= x.letter_id "
        f"WHERE x.letter_id IN ({listed}) AND y.letter_id IN ({listed}) "
        "AND x.withdrawn_on IS NULL AND y.withdrawn_on IS NULL GROUP BY x.letter_id, y.letter_id"
    )


def fifty(manifest: dict[str, Any]) -> list[str]:
    return [f"bench-letter-{k:04d}" for k in range(1, min(50, int(manifest["letters"])) + 1)]


def scenarios(run: Any) -> dict[str, tuple[Any, tuple[int, ...], bool]]:
    path = "/v1/overlaps?letters=" + ",".join(fifty(run.manifest))
    return {"overlap_50_letters": (lambda n: ("GET", path, {}), (200,), True)}


def plain_sql(run: Any, time_sql: Any, letter_ids: Any) -> dict[str, Any]:
    slugs = fifty(run.manifest)
    ids = letter_ids(run.backend, slugs)
    a, b = ids[run.largest], ids[run.second]
    low, high = min(a, b), max(a, b)
    out: dict[str, Any] = {}
    questions = {
        "overlap_two_largest (pair row)": (SQL_PAIR, {"a": low, "b": high}, run.args.sql_runs),
        "matrix_50 (pair rows)": (sql_matrix(list(ids.values())), {}, run.args.sql_runs),
        "matrix_50 (join of signatures)": (sql_matrix_join(list(ids.values())), {}, 5),
    }
    for name, (query, params, runs) in questions.items():
        try:
            out[name] = time_sql(run.backend, query, params, runs, run.args.sql_seconds)
        except Exception as exc:  # reported, never hidden
            out[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    answers = {name: q.pop("answer", None) for name, q in out.items()}
    pair_rows, join_rows = answers.get("matrix_50 (pair rows)"), answers.get("matrix_50 (join of signatures)")
    if pair_rows is not None and join_rows is not None:
        from_pairs = {(int(x), int(y)): int(n) for x, y, n in pair_rows}
        out["matrix_50 (pair rows)"]["agrees_with_join"] = from_pairs == {
            (int(x), int(y)): int(n) for x, y, n in join_rows
        }
    return out


def _actors_of_second_only(run: Any, rounds: int, letter_ids: Any) -> list[int]:
    ids = letter_ids(run.backend, [run.largest, run.second])
    conn = run.backend.connect()
    try:
        cur = conn.cursor()
        cur.execute(
            run.backend.sql(
                "SELECT s.actor_id FROM signatures s WHERE s.letter_id = :b AND s.withdrawn_on IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM signatures t WHERE t.letter_id = :a AND t.actor_id = s.actor_id) "
                "ORDER BY s.actor_id LIMIT :n"
            ),
            {"a": ids[run.largest], "b": ids[run.second], "n": rounds},
        )
        return [int(r[0]) for r in cur.fetchall()]
    finally:
        conn.close()


def _summary(values: list[float]) -> dict[str, Any]:
    values = sorted(values)
    if not values:
        return {}
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values) * 1000, 2),
        "p99_ms": round(values[min(len(values) - 1, round(0.99 * (len(values) - 1)))] * 1000, 2),
        "max_ms": round(values[-1] * 1000, 2),
    }


def after_write(run: Any, base_url: str, letter_ids: Any, rounds: int = 100) -> dict[str, Any]:
    """Write, then read at once, `rounds` times on one connection each (the read is the first
    after the write: its validator moved, so it is computed, not served from memory)."""
    actors = _actors_of_second_only(run, rounds, letter_ids)
    if not actors:
        return {"ok": False, "error": "no actor signed the second letter without the first"}
    path = f"/v1/overlaps?letters={run.largest},{run.second}"
    auth = {"Authorization": f"Bearer {run.key}"}
    writes: list[float] = []
    reads: list[float] = []
    wrong = 0
    with httpx.Client(base_url=base_url, timeout=60.0, trust_env=False) as client:
        common = client.get(path).json()["pairs"][0]["common"]
        for actor in actors:
            t0 = time.perf_counter()
            r = client.post(f"/v1/letters/{run.largest}/signatures", json={"actor_id": actor}, headers=auth)
            writes.append(time.perf_counter() - t0)
            if r.status_code != 201:
                return {"ok": False, "error": f"write -> {r.status_code}: {r.text[:200]}"}
            t0 = time.perf_counter()
            r = client.get(path)
            reads.append(time.perf_counter() - t0)
            common += 1
            if r.status_code != 200 or r.json()["pairs"][0]["common"] != common:
                wrong += 1
    read = _summary(reads)
    out: dict[str, Any] = {
        "ok": wrong == 0,
        "first_read": read,
        "write": _summary(writes),
        "wrong_answers": wrong,
        "target": TARGETS["overlap_after_write"],
    }
    if wrong:
        out["error"] = f"{wrong} reads after a write did not show it"
    if run.backend.name == "postgresql":
        out["met"] = out["ok"] and read["p50_ms"] <= 10
    return out


def pair_cost(run: Any, samples: int = 20) -> dict[str, Any]:
    """The pair statement of one signature write, alone, for actors with k other letters: a
    signature inserted in a transaction, the statement timed, the transaction rolled back."""
    from sqlalchemy.dialects import postgresql, sqlite

    from app.pairs import signature_shift

    dialect = run.backend.name
    statement = signature_shift(dialect, 1)
    compiled = statement.compile(
        dialect=postgresql.dialect() if dialect == "postgresql" else sqlite.dialect(paramstyle="named")
    )
    sql = str(compiled)
    conn = run.backend.connect()
    out: dict[str, Any] = {}
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT actor_id, count(*) FROM signatures WHERE withdrawn_on IS NULL GROUP BY actor_id ORDER BY 2"
        )
        per_actor = cur.fetchall()
        ks = sorted({int(per_actor[int(q * (len(per_actor) - 1))][1]) for q in (0.0, 0.5, 0.9, 0.99, 1.0)})
        cur.execute("SELECT id FROM letters ORDER BY id DESC LIMIT 1")
        letter = int(cur.fetchone()[0])
        for k in ks:
            actors = [int(a) for a, n in per_actor if int(n) == k][:samples]
            timings = []
            for actor in actors:
                if dialect == "postgresql":
                    conn.autocommit = False
                else:
                    cur.execute("BEGIN")
                cur.execute(
                    run.backend.sql(
                        "INSERT INTO signatures (letter_id, actor_id, signed_on, status, created_at, updated_at) "
                        "SELECT :l, :a, '2024-04-01', 'confirmed', :now, :now WHERE NOT EXISTS "
                        "(SELECT 1 FROM signatures WHERE letter_id = :l AND actor_id = :a) RETURNING id"
                    ),
                    {"l": letter, "a": actor, "now": "2024-04-01 00:00:00"},
                )
                row = cur.fetchone()
                if row is not None:
                    t0 = time.perf_counter()
                    cur.execute(sql, {**compiled.params, "signature_id": int(row[0])})
                    timings.append(time.perf_counter() - t0)
                conn.rollback()
                if dialect == "postgresql":
                    conn.autocommit = True
            # k pair rows with the actor's other letters, and the new letter's diagonal row
            out[f"k={k}"] = {"pair_rows_moved": k + 1, **_summary(timings)}
    finally:
        conn.close()
    return {"ok": True, "by_letters_signed": out}


def markdown_lines(results: list[dict[str, Any]]) -> list[str]:
    """The section of latest.md for these scenarios (HTTP rows are in the main table)."""
    lines = ["", "## Overlaps: first read after a write, cost per write", ""]
    lines += ["| measure | backend | result | target | met? |", "| --- | --- | --- | --- | --- |"]
    for result in results:
        backend = result["backend"]
        for run in result.get("runs", []):
            step = run.get("scenarios", {}).get("overlap_after_write")
            if step:
                if step.get("ok"):
                    read, write = step["first_read"], step["write"]
                    text = (
                        f"read p50 {read['p50_ms']} ms, p99 {read['p99_ms']} ms, max {read['max_ms']} ms "
                        f"({read['n']} writes, each answer checked); the write before it p50 {write['p50_ms']} ms"
                    )
                else:
                    text = f"failed: {str(step.get('error'))[:200]}"
                lines.append(
                    f"| overlap_after_write | {backend} | {text} | {step.get('target', '')} | {step.get('met', '—')} |"
                )
            cost = run.get("scenarios", {}).get("pair_cost")
            if cost and cost.get("ok"):
                text = "; ".join(
                    f"{k}: p50 {v.get('p50_ms')} ms, p99 {v.get('p99_ms')} ms"
                    for k, v in cost["by_letters_signed"].items()
                )
                lines.append(
                    f"| pair statement of one write, by letters the actor signed | {backend} | {text} | | — |"
                )
    return lines
