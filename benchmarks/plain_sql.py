"""The same questions as the service answers, asked as plain SQL on one connection (the
database's own time, the floor the service is compared against), and the check that the
service and the plain SQL agree."""

from __future__ import annotations

import contextlib
from datetime import date
from typing import TYPE_CHECKING, Any

import httpx
import overlaps as overlap_bench
from databases import letter_ids, time_sql
from harness import Server, failure

if TYPE_CHECKING:
    from run import Run

SQL_COUNTS = """
SELECT a.kind, a.country, a.org_type, m.body_id, m.party_id, count(*) AS n
FROM signatures s
JOIN actors a ON a.id = s.actor_id
LEFT JOIN memberships m ON m.actor_id = s.actor_id AND m.start_date <= s.signed_on
     AND (m.end_date IS NULL OR m.end_date >= s.signed_on)
WHERE s.letter_id = :letter AND s.signed_on <= :day
  AND (s.withdrawn_on IS NULL OR s.withdrawn_on > :day)
GROUP BY a.kind, a.country, a.org_type, m.body_id, m.party_id
"""
# Sizes of the two letters (index counts) and what they have in common: one join over the
# (letter_id, actor_id) unique index. union = size_a + size_b - common; for two letters the
# intersections follow (only a = size_a - common, only b = size_b - common).
SQL_OVERLAP = """
SELECT
  (SELECT count(*) FROM signatures WHERE letter_id = :a AND withdrawn_on IS NULL) AS size_a,
  (SELECT count(*) FROM signatures WHERE letter_id = :b AND withdrawn_on IS NULL) AS size_b,
  (SELECT count(*) FROM signatures x
     JOIN signatures y ON y.letter_id = :b AND y.actor_id = x.actor_id AND y.withdrawn_on IS NULL
    WHERE x.letter_id = :a AND x.withdrawn_on IS NULL) AS common
"""
SQL_TIMELINE = """
SELECT d, sum(n_new) AS n_new, sum(n_gone) AS n_gone FROM (
  SELECT signed_on AS d, 1 AS n_new, 0 AS n_gone FROM signatures WHERE letter_id = :letter
  UNION ALL
  SELECT withdrawn_on AS d, 0 AS n_new, 1 AS n_gone FROM signatures
   WHERE letter_id = :letter AND withdrawn_on IS NOT NULL
) t GROUP BY d ORDER BY d
"""
SQL_LETTERS = """
SELECT l.id, l.slug, l.title, l.published_on, l.claimed_signatory_count,
  (SELECT count(*) FROM signatures s WHERE s.letter_id = l.id AND s.withdrawn_on IS NULL) AS recorded
FROM letters l ORDER BY l.id LIMIT 50
"""


def plain_sql(run: Run) -> dict[str, Any]:
    ids = letter_ids(run.backend, [run.largest, run.second])
    if run.largest not in ids:
        raise RuntimeError(f"letter {run.largest} is not in the database (was the load successful?)")
    today = date.today()
    day: Any = today if run.backend.name == "postgresql" else today.isoformat()
    runs, seconds = run.args.sql_runs, run.args.sql_seconds
    questions = {
        "counts_largest": (SQL_COUNTS, {"letter": ids[run.largest], "day": day}),
        "overlap_two_largest": (
            SQL_OVERLAP,
            {"a": ids[run.largest], "b": ids.get(run.second, ids[run.largest])},
        ),
        "timeline_day": (SQL_TIMELINE, {"letter": ids[run.largest]}),
        "letters_list": (SQL_LETTERS, {}),
    }
    out: dict[str, Any] = {}
    for name, (query, params) in questions.items():
        try:
            out[name] = time_sql(run.backend, query, params, runs, seconds)
        except Exception as exc:
            out[name] = {"ok": False, "error": failure(exc)}
    if run.backend.name == "postgresql":
        # Mind the planner: the same counts with each plan forced, to show what the switch to
        # a generic plan after five executions costs (or saves) for the largest letter.
        query, params = questions["counts_largest"]
        for mode in ("custom", "generic"):
            try:
                out[f"counts_largest ({mode} plan)"] = time_sql(
                    run.backend, query, params, runs, seconds, f"SET plan_cache_mode = force_{mode}_plan"
                )
            except Exception as exc:
                out[f"counts_largest ({mode} plan)"] = {"ok": False, "error": failure(exc)}
    # What the service must agree with (checked once the server is up).
    expected: dict[str, Any] = {}
    with contextlib.suppress(KeyError, IndexError, TypeError):
        expected["counts_recorded"] = sum(int(r[5]) for r in out["counts_largest"].pop("answer"))
    with contextlib.suppress(KeyError, IndexError, TypeError, ValueError):
        size_a, size_b, common = (int(v) for v in out["overlap_two_largest"].pop("answer")[0])
        expected["overlap"] = {"size_a": size_a, "size_b": size_b, "common": common}
    with contextlib.suppress(KeyError, IndexError, TypeError):
        answer = out["timeline_day"].pop("answer")
        expected["timeline"] = {
            "new": sum(int(r[1]) for r in answer),
            "withdrawn": sum(int(r[2]) for r in answer),
        }
    for q in out.values():
        q.pop("answer", None)
    out.update(overlap_bench.plain_sql(run, time_sql, letter_ids))
    run.result["sql"] = out
    run.expected = expected
    return {"expected": expected}


def consistency(run: Run, server: Server) -> dict[str, Any]:
    """The service and the plain SQL must give the same answers, or the timings compare nothing."""
    expected = getattr(run, "expected", {})
    checks: dict[str, Any] = {}
    with httpx.Client(base_url=server.base_url, timeout=120.0, trust_env=False) as client:
        if "counts_recorded" in expected:
            body = client.get(f"/v1/letters/{run.largest}/counts").json()
            checks["counts_recorded"] = {
                "service": body.get("recorded"),
                "sql": expected["counts_recorded"],
            }
        if "overlap" in expected:
            body = client.get(f"/v1/overlaps?letters={run.largest},{run.second}").json()
            pairs = body.get("pairs") or [{}]
            checks["overlap_common"] = {
                "service": pairs[0].get("common"),
                "sql": expected["overlap"]["common"],
            }
            checks["overlap_sizes"] = {
                "service": [
                    (body.get("sizes") or {}).get(run.largest),
                    (body.get("sizes") or {}).get(run.second),
                ],
                "sql": [expected["overlap"]["size_a"], expected["overlap"]["size_b"]],
            }
        if "timeline" in expected:
            body = client.get(f"/v1/letters/{run.largest}/timeline?interval=day").json()
            points = body.get("points") or []
            checks["timeline_new"] = {
                "service": sum(p.get("new", 0) for p in points),
                "sql": expected["timeline"]["new"],
            }
            checks["timeline_withdrawn"] = {
                "service": sum(p.get("withdrawn", 0) for p in points),
                "sql": expected["timeline"]["withdrawn"],
            }
    bad = [name for name, c in checks.items() if c["service"] != c["sql"]]
    out: dict[str, Any] = {"checks": checks, "ok": not bad}
    if bad:
        out["error"] = "service and plain SQL disagree on " + ", ".join(bad)
    return out
