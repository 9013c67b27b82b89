"""What every part of the benchmark suite shares: paths, the targets, small helpers, the
memory and CPU of a process tree (Linux /proc), and the `undersigned serve` process."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import overlaps as overlap_bench

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# Targets from the issue (2 cores, 2M signatures, one worker, 16 connections).
TARGETS = {
    "counts_largest": "≥ 1,500 req/s and p99 ≤ 20 ms (1 worker)",
    "timeline_day": "≥ 550 req/s (1 worker)",
    "overlap_two_largest": overlap_bench.TARGETS["overlap_two_largest"],
    "bulk_load": "≥ 50,000 signatures/s (PostgreSQL)",
    "import_csv": "100,000 rows ≤ 5 s (≥ 20,000 rows/s)",
    "import_csv_mixed": "100,000 rows ≤ 5 s (≥ 20,000 rows/s)",
    "export_csv_api": "peak RSS growth < 100 MB",
    "export_dump_cli": "peak RSS growth < 100 MB",
}


# --------------------------------------------------------------------------------------------
# small helpers


def now_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def percentile(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(len(sorted_values), rank) - 1]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def undersigned_command() -> list[str]:
    beside = Path(sys.executable).parent / "undersigned"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("undersigned")
    if found:
        return [found]
    return [sys.executable, "-c", "from app.cli import main; main()"]


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def git_dirty() -> bool:
    """Whether app/ or migrations/ differ from the commit (the code measured is then not the commit's)."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--", "app", "migrations"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return bool(out.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return False


def scrub(text: str) -> str:
    """Results are committed: no paths of this machine in them."""
    for path, label in (
        (str(ROOT), "<repo>"),
        (sys.prefix, "<venv>"),
        (sys.base_prefix, "<python>"),
        (tempfile.gettempdir(), "<tmp>"),
        (str(Path.home()), "<home>"),
    ):
        if len(path) > 1:
            text = text.replace(path, label)
    return text


def tail(text: str, lines: int = 15) -> str:
    """The last lines of a command's output, without the frame typer draws around its errors."""
    kept = [line.strip(" ╭╮╰╯─│") for line in text.strip().splitlines()]
    kept = [line for line in kept if line and not line.startswith(("Usage:", "Try '"))]
    return "\n".join(kept[-lines:])


def failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


# --------------------------------------------------------------------------------------------
# process memory and CPU (Linux /proc)


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    i = 0
    while i < len(pids):
        task_dir = Path(f"/proc/{pids[i]}/task")
        with contextlib.suppress(OSError):
            for task in task_dir.iterdir():
                with contextlib.suppress(OSError):
                    pids.extend(int(c) for c in (task / "children").read_text().split())
        i += 1
    return pids


def rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


class RssSampler:
    """Samples the resident memory of a process tree every `interval` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.baseline: dict[int, int] = {}
        self.peak: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for pid in process_tree(self.pid):
            value = rss_bytes(pid)
            if value is None:
                continue
            self.baseline.setdefault(pid, value)
            self.peak[pid] = max(self.peak.get(pid, 0), value)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def growth(self) -> dict[str, Any]:
        per_pid = {pid: self.peak[pid] - self.baseline[pid] for pid in self.peak if pid in self.baseline}
        worst = max(per_pid, key=lambda p: per_pid[p]) if per_pid else None
        return {
            "peak_rss_growth_mb": round(per_pid[worst] / 2**20, 1) if worst else None,
            "baseline_rss_mb": round(self.baseline[worst] / 2**20, 1) if worst else None,
            "peak_rss_mb": round(self.peak[worst] / 2**20, 1) if worst else None,
            "processes_sampled": len(per_pid),
        }


# --------------------------------------------------------------------------------------------
# the server


class Server:
    def __init__(self, env: dict[str, str], workers: int, log_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.log_file = log_path.open("wb")
        self.process = subprocess.Popen(
            [
                *undersigned_command(),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            env=env,
            cwd=ROOT,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                r = httpx.get(self.base_url + "/readyz", timeout=2.0, trust_env=False)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[:200]}"
            except httpx.HTTPError as exc:
                last = failure(exc)
            time.sleep(0.25)
        raise RuntimeError(f"server not ready after {timeout:.0f} s ({last}):\n{self.log_tail()}")

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return tail(self.log_path.read_text(errors="replace"))
        return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)  # our own session only
                self.process.wait(timeout=10)
        self.log_file.close()
