"""Waiting in tests: for a condition, with a deadline, never for a fixed time (a fixed sleep is
too short on a busy machine and too long on an idle one)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import httpx


def wait_for(condition: Callable[[], object], what: str, timeout: float = 60) -> None:
    """Return as soon as `condition()` is true; fail naming `what` if it is not within `timeout`
    seconds. An exception from `condition` (a process that died, say) ends the wait at once."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def answers(url: str, process: subprocess.Popen[bytes] | None = None) -> Callable[[], bool]:
    """A condition: `url` answers 200 (a server that is starting refuses or fails meanwhile).
    With `process`, the server's: that it exited is a failure, not a reason to wait on."""

    def check() -> bool:
        if process is not None and process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            raise AssertionError(f"the server exited with {process.returncode}:\n{output}")
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    return check
