"""The Markdown report of a run (`latest.md`): one table per family of scenarios, the plain SQL,
the overlaps, and every failure."""

from __future__ import annotations

import argparse
import os
import platform
from datetime import UTC, datetime
from typing import Any

import overlaps as overlap_bench
from harness import TARGETS, git_commit, git_dirty


def cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def http_target(
    name: str, workers: int, scenario: dict[str, Any], sql: dict[str, Any]
) -> tuple[str, Any, Any]:
    """(target, ratio, met) for one HTTP scenario."""
    load = scenario.get("load") or {}
    seq = scenario.get("sequential") or {}
    sql_p50 = (sql.get(name) or {}).get("p50_ms")
    ratio = round(seq["p50_ms"] / sql_p50, 2) if seq.get("p50_ms") and sql_p50 else None
    ok = scenario.get("ok", False)
    if name == "counts_largest" and workers == 1:
        met = ok and (load.get("rps") or 0) >= 1500 and (load.get("p99_ms") or 1e9) <= 20
        return TARGETS[name], ratio, met
    if name == "timeline_day" and workers == 1:
        return TARGETS[name], ratio, ok and (load.get("rps") or 0) >= 550
    if name == "overlap_two_largest" and workers == 1:
        met = ok and (load.get("rps") or 0) >= 3000 and (load.get("p99_ms") or 1e9) <= 20
        return TARGETS[name], ratio, met
    return "", ratio, None


def markdown(results: list[dict[str, Any]], args: argparse.Namespace, files: list[str]) -> str:
    first = results[0] if results else {}
    dataset = first.get("dataset", {})
    lines = [
        "# Undersigned benchmark results",
        "",
        f"- run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {git_commit() or '?'}"
        + (" with uncommitted changes to app/ or migrations/" if git_dirty() else ""),
        f"- **scale {args.scale}**: {fmt(dataset.get('signatures'))} signatures, {fmt(dataset.get('actors'))} actors, "
        f"{fmt(dataset.get('letters'))} letters; largest letter {fmt((dataset.get('largest_letters') or [{}])[0].get('signatures'))} "
        f"signatures, second {fmt((dataset.get('largest_letters') or [{}, {}])[1].get('signatures'))}"
        + ("" if args.scale == 1 else " — **not the full size: the targets are for scale 1**"),
        f"- machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()} {platform.release()}; "
        "client and server share the machine (loopback)",
        "- load average (1, 5, 15 min) before each backend's run: "
        + "; ".join(
            f"{r['backend']} {', '.join(f'{x:.1f}' for x in r.get('load_average_at_start', []))}"
            for r in results
        )
        + " — anything well above 0 means other work shared the cores and the rates are low",
        f"- load: {args.concurrency} concurrent keep-alive connections ({args.client} client), at most {args.requests:,} requests "
        f"({args.write_requests:,} for writes) or {args.seconds:g} s per scenario, after {args.warmup} warm-up requests; "
        f"unloaded latency from one connection ({args.sequential} requests); plain SQL: up to {args.sql_runs} "
        "executions on one connection",
        f"- files: {', '.join(files)}",
        "",
        "## HTTP scenarios",
        "",
        "`seq p50` is the latency on one connection with nothing else running; `ratio` = seq p50 / SQL p50 "
        "(the service's time over the database's own time for the same question).",
        "",
        "| scenario | backend | workers | req/s | p50 ms | p99 ms | errors | seq p50 ms | SQL p50 ms | ratio | target | met? |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for result in results:
        sql = result.get("sql", {})
        for run in result.get("runs", []):
            if run.get("error") and not run.get("scenarios"):
                lines.append(
                    f"| (server) | {result['backend']} | {run['workers']} | failed: {cell(run['error'][:120])} "
                    "| | | | | | | | |"
                )
            for name, scenario in run.get("scenarios", {}).items():
                if (
                    "load" not in scenario
                    and "sequential" not in scenario
                    and name
                    in (
                        "import_csv",
                        "import_csv_mixed",
                        "export_csv_api",
                        "overlap_after_write",
                        "pair_cost",
                    )
                ):
                    continue
                load = scenario.get("load") or {}
                seq = scenario.get("sequential") or {}
                target, ratio, met = http_target(name, run["workers"], scenario, sql)
                errors = load.get("errors")
                if not scenario.get("ok") and not load:
                    errors = f"failed: {cell(scenario.get('error', '')[:100])}"
                lines.append(
                    f"| {name} | {result['backend']} | {run['workers']} | {fmt(load.get('rps'))} | {fmt(load.get('p50_ms'), 2)} "
                    f"| {fmt(load.get('p99_ms'), 2)} | {fmt(errors)} | {fmt(seq.get('p50_ms'), 2)} "
                    f"| {fmt((sql.get(name) or {}).get('p50_ms'), 2)} | {fmt(ratio, 2)} | {target} | {fmt(met)} |"
                )
    lines += [
        "",
        "## Load, import, export",
        "",
        "| scenario | backend | workers | result | target | met? |",
        "| --- | --- | ---: | --- | --- | --- |",
    ]
    for result in results:
        backend = result["backend"]
        load = result.get("steps", {}).get("bulk_load", {})
        if load.get("ok"):
            text = f"{fmt(load.get('signatures_per_s'), 0)} signatures/s ({fmt(load.get('seconds'), 1)} s)"
            after = load.get("after_load")
            if after:
                text += cell(
                    f", then `{after['command']}` (exit {after['exit_code']}, {fmt(after['seconds'], 1)} s, not counted)"
                )
        else:
            text = f"failed: {cell(load.get('error', '')[:200])}"
            fallback = load.get("fallback_load")
            if fallback:
                text += (
                    f" — data loaded by benchmarks/fallback_load.py instead ({fmt(fallback.get('seconds'), 1)} s, "
                    "not a product figure) so the other scenarios could run"
                    if fallback.get("ok")
                    else f" — fallback loader failed too: {cell(str(fallback.get('error'))[:200])}"
                )
        lines.append(
            f"| bulk_load | {backend} | — | {text} | {load.get('target', '')} | {fmt(load.get('met'))} |"
        )
        for run in result.get("runs", []):
            for name in ("import_csv", "import_csv_mixed", "export_csv_api"):
                step = run.get("scenarios", {}).get(name)
                if not step:
                    continue
                if step.get("ok"):
                    if name.startswith("import_csv"):
                        text = f"{fmt(step['rows'])} rows in {fmt(step['seconds'], 2)} s ({fmt(step['rows_per_s'], 0)} rows/s)"
                    else:
                        text = (
                            f"{fmt(step['lines'])} lines, {fmt(step['bytes'] / 2**20, 1)} MB in {fmt(step['seconds'], 2)} s; "
                            f"peak RSS growth {fmt(step['peak_rss_growth_mb'])} MB"
                        )
                else:
                    text = f"failed: {cell(step.get('error', '')[:200])}"
                lines.append(
                    f"| {name} | {backend} | {run['workers']} | {text} | {step.get('target', '')} | {fmt(step.get('met'))} |"
                )
        for run in result.get("runs", []):
            check = run.get("consistency")
            if check:
                pairs = ", ".join(
                    f"{name} {c['service']} vs {c['sql']}" for name, c in (check.get("checks") or {}).items()
                )
                text = ("agree: " if check.get("ok") else f"{cell(check.get('error', ''))}: ") + (
                    pairs or "nothing to compare"
                )
                lines.append(
                    f"| consistency (service vs SQL) | {backend} | {run['workers']} | {text} | same answers | {fmt(check.get('ok'))} |"
                )
        step = result.get("steps", {}).get("export_dump_cli")
        if step:
            if step.get("ok"):
                text = (
                    f"{fmt(step.get('signature_lines'))} signatures in {fmt(step['seconds'], 1)} s; "
                    f"peak RSS growth {fmt(step['peak_rss_growth_mb'])} MB over `keys list`"
                )
            else:
                text = f"failed: {cell(step.get('error', '')[:200])}"
            lines.append(
                f"| export_dump_cli | {backend} | — | {text} | {step.get('target', '')} | {fmt(step.get('met'))} |"
            )
    lines += ["", "## Plain SQL (database's own time, one connection)", ""]
    lines += [
        "| question | backend | runs | first ms | p50 ms | p99 ms | rows |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        for name, q in result.get("sql", {}).items():
            if q.get("ok") is False:
                lines.append(
                    f"| {name} | {result['backend']} | failed: {cell(q.get('error', '')[:150])} | | | | |"
                )
                continue
            lines.append(
                f"| {name} | {result['backend']} | {fmt(q.get('runs'))} | {fmt(q.get('first_ms'), 2)} | {fmt(q.get('p50_ms'), 2)} "
                f"| {fmt(q.get('p99_ms'), 2)} | {fmt(q.get('rows'))} |"
            )
    lines += overlap_bench.markdown_lines(results)
    failures = []
    for result in results:
        for name, step in result.get("steps", {}).items():
            if not step.get("ok"):
                failures.append(f"- {result['backend']} {name}: {cell(step.get('error'))}")
        for run in result.get("runs", []):
            if run.get("consistency") and not run["consistency"].get("ok"):
                failures.append(
                    f"- {result['backend']} consistency: {cell(run['consistency'].get('error', ''))}"
                )
            if run.get("error"):
                failures.append(
                    f"- {result['backend']} workers={run['workers']} server: {run['error'][:500]}"
                )
            for name, scenario in run.get("scenarios", {}).items():
                if not scenario.get("ok"):
                    failures.append(
                        f"- {result['backend']} workers={run['workers']} {name}: {str(scenario.get('error'))[:300]}"
                    )
    if failures:
        lines += ["", "## Failures", "", *failures]
    return "\n".join(lines) + "\n"
