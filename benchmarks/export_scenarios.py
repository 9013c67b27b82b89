"""The export scenarios: the CSV of the largest letter streamed through the API while the
server's memory is sampled (`export_csv_api`), and `undersigned export DIR` of the whole
registry with its peak memory (`export_dump_cli`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from typing import TYPE_CHECKING, Any

import httpx
from harness import ROOT, TARGETS, RssSampler, Server, tail, undersigned_command

if TYPE_CHECKING:
    from run import Run


def export_api(run: Run, server: Server) -> dict[str, Any]:
    rows = 0
    size = 0
    status = None
    with RssSampler(server.process.pid) as sampler:
        t0 = time.perf_counter()
        with (
            httpx.Client(base_url=server.base_url, timeout=900.0, trust_env=False) as client,
            client.stream("GET", f"/v1/letters/{run.largest}/signatures?format=csv") as response,
        ):
            status = response.status_code
            for chunk in response.iter_bytes():
                size += len(chunk)
                rows += chunk.count(b"\n")
        seconds = time.perf_counter() - t0
    out: dict[str, Any] = {
        "status": status,
        "lines": rows,
        "bytes": size,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds, 1) if seconds else None,
        **sampler.growth(),
        "target": TARGETS["export_csv_api"],
    }
    if status != 200:
        out.update(ok=False, error=f"status {status}", met=False)
    else:
        growth = out["peak_rss_growth_mb"]
        out["met"] = growth is not None and growth < 100
    return out


def export_cli(run: Run) -> dict[str, Any]:
    """`undersigned export DIR` writes every signature; its peak RSS over that of a CLI
    command that imports the same code and touches the database (`keys list`)."""

    def max_rss(argv: list[str]) -> tuple[int, int, float, str]:
        t0 = time.perf_counter()
        with tempfile.TemporaryFile() as errors:
            process = subprocess.Popen(
                [*undersigned_command(), *argv],
                env=run.env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            errors.seek(0)
            text = errors.read().decode(errors="replace")
        return process.returncode, usage.ru_maxrss * 1024, time.perf_counter() - t0, text

    code, base, _, text = max_rss(["keys", "list"])
    if code != 0:
        raise RuntimeError(f"`undersigned keys list` exited {code}: {tail(text)}")
    target = run.workdir / "export"
    shutil.rmtree(target, ignore_errors=True)
    code, peak, seconds, text = max_rss(["export", str(target)])
    out: dict[str, Any] = {
        "exit_code": code,
        "seconds": round(seconds, 2),
        "target": TARGETS["export_dump_cli"],
    }
    if code != 0:
        out.update(ok=False, error=f"`undersigned export DIR` exited {code}: {tail(text)}", met=False)
        return out
    signatures = target / "signatures.csv"
    lines = 0
    if signatures.exists():
        with signatures.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                lines += block.count(b"\n")
    out.update(
        signature_lines=max(0, lines - 1),
        baseline_rss_mb=round(base / 2**20, 1),
        peak_rss_mb=round(peak / 2**20, 1),
        peak_rss_growth_mb=round((peak - base) / 2**20, 1),
        met=(peak - base) / 2**20 < 100,
    )
    shutil.rmtree(target, ignore_errors=True)
    return out
