"""The HTTP scenarios driven under load — the hot reads (counts, overlap, timeline, the letter
list, `/healthz` as the ceiling) and one signature write — and how one is measured: warm-up,
one connection alone (the unloaded latency), then `--concurrency` keep-alive connections."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import overlaps as overlap_bench
from client import Request, drive
from harness import Server, cpu_seconds, process_tree

if TYPE_CHECKING:
    from run import Run


def scenarios(run: Run, tag: str) -> dict[str, tuple[Callable[[int], Request], tuple[int, ...], bool]]:
    auth = {"Authorization": f"Bearer {run.key}"} if run.key else {}

    def get(path: str) -> Callable[[int], Request]:
        return lambda n: ("GET", path, {})

    def write(n: int) -> Request:
        return (
            "POST",
            f"/v1/letters/{run.write_letter}/signatures",
            {
                "json": {"actor": {"kind": "person", "name": f"Bench writer {tag} {n:06d}"}},
                "headers": auth,
            },
        )

    # name -> (request factory, expected statuses, is a read)
    return {
        "healthz_ceiling": (get("/healthz"), (200,), True),
        "counts_largest": (get(f"/v1/letters/{run.largest}/counts"), (200,), True),
        "overlap_two_largest": (get(f"/v1/overlaps?letters={run.largest},{run.second}"), (200,), True),
        **overlap_bench.scenarios(run),
        "timeline_day": (get(f"/v1/letters/{run.largest}/timeline?interval=day"), (200,), True),
        "letters_list": (get("/v1/letters?limit=50"), (200,), True),
        "signature_write": (write, (201,), False),
    }


def measure(
    run: Run, server: Server, make: Callable[[int], Request], expect: tuple[int, ...], read: bool
) -> dict[str, Any]:
    """One scenario against a running server: for a read, warm-up and then one connection alone;
    then the concurrent load, with the server's share of the CPU."""
    args = run.args
    scenario: dict[str, Any] = {}
    if read:
        # warm-up, then one connection (unloaded latency), then the concurrent load
        asyncio.run(
            drive(
                server.base_url,
                make,
                args.concurrency,
                args.warmup,
                30.0,
                expect,
                args.client,
            )
        )
        seq = asyncio.run(
            drive(
                server.base_url,
                make,
                1,
                args.sequential,
                args.seconds / 2,
                expect,
                args.client,
            )
        )
        scenario["sequential"] = seq
    pids = process_tree(server.process.pid)
    cpu0 = cpu_seconds(pids)
    load = asyncio.run(
        drive(
            server.base_url,
            make,
            args.concurrency,
            args.requests if read else args.write_requests,
            args.seconds,
            expect,
            args.client,
        )
    )
    if load["seconds"]:
        load["server_cpu_share"] = round((cpu_seconds(pids) - cpu0) / load["seconds"], 2)
    scenario["load"] = load
    scenario["ok"] = load["errors"] == 0 and load["requests"] > 0
    if not scenario["ok"]:
        scenario["error"] = load["error_sample"] or "no request completed"
    return scenario
