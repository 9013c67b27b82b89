"""The open-file limit a serving process needs: every counts stream holds a socket."""

from __future__ import annotations

import resource

from app.config import Settings

SPARE_FILES = 512  # listening sockets, the database pools, logs, SQLite's files, and other clients


def files_needed(settings: Settings) -> int:
    return settings.sse_max_streams + settings.db_pool_size + settings.db_max_overflow + SPARE_FILES


def raise_open_file_limit(needed: int) -> tuple[int, str | None]:
    """Raise this process's soft RLIMIT_NOFILE to `needed` (as far as the hard limit lets it;
    never lower it). The soft limit now, and a warning to show when it is short of `needed`.
    Worker processes started from this one inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft, None
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft >= needed:
        return soft, None
    return soft, (
        f"the open-file limit is {soft} (the hard limit), below the {needed} the settings need: a "
        f"process will refuse connections before it holds SSE_MAX_STREAMS counts streams. Raise the "
        f"hard limit (ulimit -Hn; LimitNOFILE= in a systemd unit; --ulimit nofile= for Docker) or "
        f"lower SSE_MAX_STREAMS."
    )
