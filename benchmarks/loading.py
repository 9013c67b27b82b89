"""The steps before any scenario: a fresh database, the bulk load with `undersigned import DIR`
(timed: the bulk-load figure), its fallback when that fails, and a write key."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from databases import table_counts
from harness import HERE, ROOT, TARGETS, log, tail

if TYPE_CHECKING:
    from run import Run


def create_database(run: Run) -> dict[str, Any]:
    run.backend.prepare()
    done = run.cli("db", "upgrade", timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"`undersigned db upgrade` exited {done.returncode}: {tail(done.stderr)}")
    return {
        "database": "a SQLite file in a temporary folder"
        if run.backend.name == "sqlite"
        else "PostgreSQL on loopback"
    }


def bulk_load(run: Run) -> dict[str, Any]:
    t0 = time.perf_counter()
    done = run.cli("import", str(run.dump))
    seconds = time.perf_counter() - t0
    out: dict[str, Any] = {"seconds": round(seconds, 2), "exit_code": done.returncode}
    if run.backend.name == "postgresql":
        out["target"] = TARGETS["bulk_load"]
    if done.returncode != 0:
        out.update(
            ok=False,
            met=False if "target" in out else None,
            error=f"`undersigned import DIR` exited {done.returncode}: {tail(done.stderr or done.stdout, 4)}",
        )
        if run.args.fallback:
            out["fallback_load"] = fallback_load(run)
        return out
    counts = table_counts(run.backend)
    out["tables"] = counts
    expected = int(run.manifest["signatures"])
    out["signatures_per_s"] = round(expected / seconds, 1)
    if counts.get("signatures") != expected or counts.get("actors") != run.manifest["actors"]:
        out.update(
            ok=False,
            error=f"loaded {counts.get('signatures')} signatures and {counts.get('actors')} actors, "
            f"expected {expected} and {run.manifest['actors']}",
        )
    if "target" in out:
        out["met"] = out.get("ok", True) and out["signatures_per_s"] >= 50_000
    if run.args.after_load:
        # An extra CLI step the load should have made unnecessary; timed apart, never hidden.
        t1 = time.perf_counter()
        extra = run.cli(*run.args.after_load.split())
        out["after_load"] = {
            "command": f"undersigned {run.args.after_load}",
            "exit_code": extra.returncode,
            "seconds": round(time.perf_counter() - t1, 2),
            "output": tail(extra.stdout + extra.stderr, 4),
        }
    analyze(run)
    return out


def analyze(run: Run) -> None:
    """PostgreSQL: what autovacuum would have done a minute after the load."""
    if run.backend.name == "postgresql":
        conn = run.backend.connect()
        try:
            conn.execute("ANALYZE")
        finally:
            conn.close()


def fallback_load(run: Run) -> dict[str, Any]:
    """Only so the HTTP scenarios have data when the product's loader fails; never a result."""
    log(f"{run.backend.name}: `undersigned import DIR` failed; loading with benchmarks/fallback_load.py")
    run.backend.prepare()  # the failed import may have left rows behind
    migrated = run.cli("db", "upgrade", timeout=600)
    if migrated.returncode != 0:
        return {"ok": False, "error": f"db upgrade exited {migrated.returncode}: {tail(migrated.stderr)}"}
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(HERE / "fallback_load.py"), str(run.dump)],
        env={**run.env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=7200,
    )
    out: dict[str, Any] = {"ok": done.returncode == 0, "seconds": round(time.perf_counter() - t0, 2)}
    if done.returncode != 0:
        out["error"] = tail(done.stderr, 6)
        return out
    out["tables"] = table_counts(run.backend)
    analyze(run)
    return out


def create_key(run: Run) -> dict[str, Any]:
    done = run.cli("keys", "create", "--name", "bench", "--scope", "write", timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"`undersigned keys create` exited {done.returncode}: {tail(done.stderr)}")
    run.key = done.stdout.strip().splitlines()[-1].strip()
    return {}
