"""The Undersigned benchmark suite, in one command.

    python benchmarks/run.py --scale 1 --backends sqlite,postgresql --workers 1,2

For each backend: generate the registry (or reuse the cached dump of that scale), create a fresh
database, load the dump with `undersigned import DIR` (timed: signatures/s), run the same
questions as plain SQL on one connection (the database's own time), then for each worker count
start `undersigned serve` on loopback and drive it with 16 concurrent keep-alive connections
(bounded in requests and in seconds per scenario): counts of the largest letter, overlap of the
two largest, day timeline, the letter list, one signature write. Once per backend (with the first
worker count) it also times a CSV import through the API and streams a CSV export of the largest
letter while sampling the server's memory, and measures the memory of `undersigned export DIR`
(every signature of the registry).

Every scenario that fails (a missing command, an endpoint that answers errors) is reported as
failed in the results and the run carries on. Results go to `<out>/<timestamp>-<backend>.json`
and `<out>/latest.md`. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# httpcore tries `import sniffio` on every request; where it is not installed each failed import
# searches sys.path (a quarter of a millisecond). Make the miss immediate.
if importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# This file is the runner; the scenarios live in modules by family: loading (the database and the
# bulk load), plain_sql (the database's own time and the consistency check), http_scenarios (the
# reads and the write under load, driven by client.py), import_scenarios, export_scenarios,
# overlaps; harness and databases hold what they share, report writes latest.md.

import export_scenarios  # noqa: E402
import http_scenarios  # noqa: E402
import import_scenarios  # noqa: E402
import loading  # noqa: E402
import overlaps as overlap_bench  # noqa: E402
import plain_sql  # noqa: E402
from databases import Backend, PostgresBackend, SQLiteBackend, letter_ids  # noqa: E402
from generate import generate, manifest_path  # noqa: E402
from harness import (  # noqa: E402
    ROOT,
    Server,
    cpu_seconds,
    failure,
    git_commit,
    git_dirty,
    log,
    now_stamp,
    process_tree,
    scrub,
    tail,
    undersigned_command,
)
from report import markdown  # noqa: E402

# --------------------------------------------------------------------------------------------
# one backend


class Run:
    def __init__(
        self, args: argparse.Namespace, backend: Backend, dump: Path, manifest: dict[str, Any]
    ) -> None:
        self.args = args
        self.backend = backend
        self.dump = dump
        self.manifest = manifest
        self.env = {
            **os.environ,
            "DATABASE_URL": backend.url,
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "warning"),
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("TEST_DATABASE_URL", None)
        slugs = [entry["slug"] for entry in manifest["largest_letters"]]
        self.largest = slugs[0]
        self.second = slugs[1] if len(slugs) > 1 else slugs[0]
        n_letters = int(manifest["letters"])
        self.write_letter = f"bench-letter-{min(100, n_letters):04d}"
        self.key: str | None = None
        self.result: dict[str, Any] = {
            "backend": backend.name,
            "scale": args.scale,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "load_average_at_start": list(os.getloadavg()),
            "dataset": manifest,
            "steps": {},
            "sql": {},
            "runs": [],
        }
        self.workdir = Path(tempfile.mkdtemp(prefix=f"undersigned-bench-{backend.name}-"))

    def step(self, name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        log(f"{self.backend.name}: {name}")
        t0 = time.perf_counter()
        try:
            out = fn()
            out.setdefault("ok", True)
        except Exception as exc:
            out = {"ok": False, "error": failure(exc), "trace": tail(traceback.format_exc(), 6)}
            log(f"{self.backend.name}: {name} FAILED: {out['error']}")
        out["step_seconds"] = round(time.perf_counter() - t0, 2)
        return out

    def cli(self, *argv: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*undersigned_command(), *argv],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def serve_and_load(self, workers: int, first: bool) -> dict[str, Any]:
        run: dict[str, Any] = {"workers": workers, "scenarios": {}}
        server = Server(self.env, workers, self.workdir / f"server-w{workers}.log")
        try:
            server.wait_ready()
            run["server_cpu_seconds_start"] = cpu_seconds(process_tree(server.process.pid))
            tag = f"w{workers}-{os.getpid()}"
            if first:
                run["consistency"] = self.step(
                    "consistency with plain SQL", lambda: plain_sql.consistency(self, server)
                )
            for name, (make, expect, read) in http_scenarios.scenarios(self, tag).items():
                if not self.wanted(name):
                    continue
                log(f"{self.backend.name} w{workers}: {name}")
                try:
                    scenario = http_scenarios.measure(self, server, make, expect, read)
                except Exception as exc:
                    scenario = {"ok": False, "error": failure(exc)}
                run["scenarios"][name] = scenario
            if first and self.wanted("overlap_after_write"):
                run["scenarios"]["overlap_after_write"] = self.step(
                    "overlap_after_write",
                    lambda: overlap_bench.after_write(self, server.base_url, letter_ids),
                )
            if first and self.wanted("pair_cost"):
                run["scenarios"]["pair_cost"] = self.step("pair_cost", lambda: overlap_bench.pair_cost(self))
            for name in ("import_csv", "import_csv_mixed"):
                if first and self.wanted(name):
                    run["scenarios"][name] = self.step(
                        name, lambda name=name: import_scenarios.import_csv(self, server, workers, name)
                    )
            if first and self.wanted("export_csv_api"):
                run["scenarios"]["export_csv_api"] = self.step(
                    "export_csv_api", lambda: export_scenarios.export_api(self, server)
                )
        except Exception as exc:
            run["error"] = failure(exc)
            log(f"{self.backend.name} w{workers}: FAILED {run['error']}")
        finally:
            server.stop()
            run["server_log_tail"] = server.log_tail()
        return run

    def wanted(self, name: str) -> bool:
        return not self.args.only or name in self.args.only

    # the whole backend ----------------------------------------------------------------------

    def execute(self) -> dict[str, Any]:
        steps = self.result["steps"]
        try:
            steps["create_database"] = self.step("create database", lambda: loading.create_database(self))
            steps["bulk_load"] = self.step(
                "bulk load (undersigned import DIR)", lambda: loading.bulk_load(self)
            )
            steps["create_key"] = self.step("write key", lambda: loading.create_key(self))
            steps["plain_sql"] = self.step("plain SQL", lambda: plain_sql.plain_sql(self))
            for i, workers in enumerate(self.args.workers):
                self.result["runs"].append(self.serve_and_load(workers, first=i == 0))
            if self.wanted("export_dump_cli"):
                steps["export_dump_cli"] = self.step(
                    "export (undersigned export DIR)", lambda: export_scenarios.export_cli(self)
                )
        finally:
            self.result["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
            self.result["load_average_at_end"] = list(os.getloadavg())
            self.backend.cleanup()
            shutil.rmtree(self.workdir, ignore_errors=True)
        return self.result


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="1 = 2M signatures (the targets' size); 0.01 quick"
    )
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument(
        "--workers", default="1,2", help="comma-separated worker counts for `serve --workers`"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--cache", type=Path, default=HERE / ".cache", help="where generated dumps are kept")
    parser.add_argument("--regenerate", action="store_true", help="generate the dump even if cached")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/undersigned_bench")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--client",
        choices=["raw", "httpx"],
        default="raw",
        help="load client: a minimal asyncio HTTP/1.1 client (default) or httpx (costlier per request)",
    )
    parser.add_argument("--requests", type=int, default=5000, help="most requests per read scenario")
    parser.add_argument(
        "--write-requests", type=int, default=1000, help="most requests of the write scenario"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="most seconds per scenario")
    parser.add_argument("--warmup", type=int, default=50, help="warm-up requests per scenario")
    parser.add_argument(
        "--sequential", type=int, default=100, help="requests on one connection (unloaded latency)"
    )
    parser.add_argument("--sql-runs", type=int, default=200)
    parser.add_argument("--sql-seconds", type=float, default=20.0)
    parser.add_argument(
        "--import-rows", type=int, default=None, help="CSV import rows (default 100,000 × scale, ≥ 1,000)"
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated scenarios to run (healthz_ceiling, counts_largest, overlap_two_largest, "
        "overlap_50_letters, overlap_after_write, pair_cost, "
        "timeline_day, letters_list, signature_write, import_csv, import_csv_mixed, export_csv_api, "
        "export_dump_cli); "
        "default all. The load and the plain SQL always run.",
    )
    parser.add_argument(
        "--after-load",
        default="",
        help="an `undersigned` sub-command to run after the load, e.g. 'db rebuild-rollups' (timed apart, reported)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the SQLite database file")
    parser.add_argument(
        "--no-fallback",
        dest="fallback",
        action="store_false",
        help="if `undersigned import DIR` fails, do not load the data with benchmarks/fallback_load.py",
    )
    args = parser.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    args.only = {name.strip() for name in args.only.split(",") if name.strip()}
    args.workers = [int(w) for w in args.workers.split(",") if w.strip()]
    if args.import_rows is None:
        args.import_rows = max(1000, round(100_000 * min(1.0, args.scale)))
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["streams"]:  # the live counts scenario: benchmarks/streams.py
        import streams

        return streams.main(argv[1:])
    args = parse_args(argv)
    dump = args.cache / f"scale-{args.scale:g}" / "dump"
    manifest_file = manifest_path(dump)
    if args.regenerate or not manifest_file.exists():
        log(f"generating the scale-{args.scale:g} dump into {dump}")
        shutil.rmtree(dump, ignore_errors=True)
        manifest = generate(dump, args.scale)
    else:
        manifest = json.loads(manifest_file.read_text())
        log(f"reusing the cached dump {dump} ({manifest['signatures']:,} signatures)")

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = now_stamp()
    results: list[dict[str, Any]] = []
    files: list[str] = []
    for name in args.backends:
        backend: Backend = SQLiteBackend(args.keep) if name == "sqlite" else PostgresBackend(args.pg_url)
        result = Run(args, backend, dump, manifest).execute()
        result["commit"] = git_commit()
        result["uncommitted_changes"] = git_dirty()
        result["settings"] = {
            k: (str(v) if isinstance(v, Path) else sorted(v) if isinstance(v, set) else v)
            for k, v in vars(args).items()
            if k not in ("out", "cache")
        }
        path = args.out / f"{stamp}-{name}.json"
        path.write_text(scrub(json.dumps(result, indent=2, default=str)) + "\n", encoding="utf-8")
        files.append(path.name)
        results.append(result)
        log(f"wrote {path}")
    report = scrub(markdown(results, args, files))
    (args.out / "latest.md").write_text(report, encoding="utf-8")
    print(report)
    log(f"wrote {args.out / 'latest.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
