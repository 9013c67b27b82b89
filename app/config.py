"""Settings, read from the environment (and an optional `.env` file).

docs/configuration.md holds the table of every setting, made from the fields below by
`python -m app.config docs/configuration.md` (a test fails when the two differ).

`DATABASE_URL` is accepted as people write it (`sqlite:///registry.db`,
`postgresql://user@host/db`, `postgres://…`); `driver_url()` turns it into the URL SQLAlchemy
needs, choosing the driver the project ships with (the standard `sqlite3`, `psycopg` 3).
"""

from __future__ import annotations

import argparse
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

DEFAULT_DATABASE_URL = "sqlite:///undersigned.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="`sqlite:///PATH` or `postgresql://USER[:PASSWORD]@HOST[:PORT]/DB` (`postgres://` "
        "works too); the driver is picked for you.",
    )
    public_url: str | None = Field(
        default=None,
        description="Scheme, host and port this service is reached at (for oEmbed, links); set it when a "
        "proxy sits in front.",
    )
    max_body_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1024, description="Largest request body (20 MB); larger is a 413."
    )
    rate_limit_per_address: int = Field(
        default=0, ge=0, description="Requests a minute per client address (0 = no limit)."
    )
    rate_limit_per_key: int = Field(
        default=0,
        ge=0,
        description="Writes a minute per API key, unless the key sets its own (0 = no limit).",
    )
    statement_timeout_ms: int = Field(
        default=15_000, ge=0, description="PostgreSQL statement timeout for analytics (0 = none)."
    )
    sqlite_busy_timeout_ms: int = Field(
        default=30_000,
        ge=0,
        description="How long a SQLite writer waits for its turn: behind the other writers of its "
        "process, then for the database's write lock.",
    )
    db_pool_size: int = Field(default=10, ge=1, description="PostgreSQL connection pool: connections kept.")
    db_max_overflow: int = Field(
        default=10, ge=0, description="PostgreSQL connection pool: connections opened beyond the pool size."
    )
    log_level: str = Field(default="info", description="Log level (debug, info, warning, error).")
    match_scorer: str = Field(
        default="token_sort_ratio",
        description="rapidfuzz scorer for fuzzy name matching in imports: token_sort_ratio, token_set_ratio, ratio, WRatio, …",
    )
    match_threshold: float = Field(
        default=92,
        ge=0,
        le=100,
        description="Lowest fuzzy score (0-100) that counts as a match in imports (precision and recall "
        "per threshold: [identity](identity.md#measured-precision-and-recall)).",
    )
    match_possible_threshold: float = Field(
        default=80,
        ge=0,
        le=100,
        description="Lowest fuzzy score (0-100) that an import reports as a possible match of a row "
        "(`possible_matches`) without matching it.",
    )

    embed_max_age: int = Field(
        default=60, ge=0, description="Cache-Control max-age (seconds) of counts, badges, embeds and oEmbed."
    )
    embed_stale_seconds: int = Field(
        default=600,
        ge=0,
        description="Cache-Control stale-while-revalidate (seconds) of counts, badges and embeds: how long "
        "a CDN may keep serving its copy while it revalidates it (0 = not said).",
    )
    sse_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often a process reads the versions of the letters its counts streams watch: on "
        "SQLite always, on PostgreSQL only while its LISTEN connection is down.",
    )
    sse_resync_seconds: float = Field(
        default=60.0,
        gt=0,
        description="On PostgreSQL, how often a process checks the letters its streams watch even though "
        "LISTEN is up (catches writes made outside the service, and a day's change of the counts).",
    )
    sse_heartbeat_seconds: float = Field(
        default=15.0, gt=0, description="Seconds between heartbeat comments on an idle counts stream."
    )
    sse_max_streams: int = Field(
        default=12_000,
        ge=1,
        description="Open counts streams per worker process (`serve` raises the open-file limit to match).",
    )
    sse_buffer_events: int = Field(
        default=16,
        ge=2,
        description="Events queued for one counts stream; a reader that falls further behind is dropped "
        "(its browser reconnects after `retry`).",
    )
    sse_max_seconds: float = Field(
        default=300.0,
        gt=0,
        description="A counts stream ends after about this long (browsers reconnect after the `retry: 5000` "
        "it sets and get the current counts at once), so clients spread over workers.",
    )

    def embed_cache_control(self) -> str:
        """`Cache-Control` of the public reads of a letter (counts, badge, widget): fresh for
        `embed_max_age`, then served stale by a shared cache while it revalidates."""
        stale = f", stale-while-revalidate={self.embed_stale_seconds}" if self.embed_stale_seconds else ""
        return f"public, max-age={self.embed_max_age}{stale}"

    # Hardening (docs/security.md): what one caller may ask of the service.
    allowed_hosts: str = Field(
        default="localhost,127.0.0.1,[::1]",
        description="Comma-separated Host names this service answers to (with PUBLIC_URL's host); "
        "another Host header is a 400. '*' trusts any Host (only behind a proxy that checks it).",
    )
    date_min: date = Field(
        default=date(1900, 1, 1), description="Earliest date accepted on input (API, imports, dump loads)."
    )
    date_max: date = Field(
        default=date(2100, 12, 31), description="Latest date accepted on input (API, imports, dump loads)."
    )
    body_timeout_seconds: float = Field(
        default=60.0, gt=0, description="A request body must arrive whole within this time (else 408)."
    )
    max_json_depth: int = Field(
        default=32, ge=2, description="Deepest nesting of a JSON body (deeper is a 422 at once)."
    )
    max_csv_columns: int = Field(
        default=200, ge=1, description="Most columns of an imported CSV (more is a 422 at once)."
    )
    max_line_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Longest line (CSV record) of an imported CSV, in bytes (longer is a 422 at once).",
    )
    max_timeline_points: int = Field(
        default=20_000, ge=10, description="Most points of one timeline series (more is a 422)."
    )
    import_report_rows: int = Field(
        default=20_000,
        ge=1,
        description="Rows of each status an import report lists (the summary counts all).",
    )
    export_page_rows: int = Field(
        default=1000,
        ge=1,
        le=1000,
        description="Rows a streamed CSV/NDJSON export of a list reads per page (each page in a session of its own).",
    )
    render_cache_bytes: int = Field(
        default=64 * 1024 * 1024, ge=0, description="Bytes of rendered hot reads kept per process (64 MB)."
    )
    db_pool_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long a request waits for a free database connection (then 503 with Retry-After).",
    )

    webhook_worker: bool = Field(
        default=True,
        description="Deliver webhooks from inside `serve` (else run `undersigned webhooks run`).",
    )
    webhook_allow_private_targets: bool = Field(
        default=False,
        description="Allow webhooks to post to loopback, private and link-local addresses (tests, intranets).",
    )
    webhook_retry_base_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Delay before a failed delivery's first retry (upper bound); it doubles each time, "
        "with jitter.",
    )
    webhook_retry_max_seconds: float = Field(
        default=86_400.0, gt=0, description="How long one event is retried before its webhook is disabled."
    )
    webhook_failing_after: int = Field(
        default=5, ge=1, description="Failed deliveries in a row after which a webhook shows as `failing`."
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, description="Timeout of one delivery.")
    webhook_poll_seconds: float = Field(
        default=0.25, gt=0, description="How often an idle delivery worker looks for new events."
    )
    webhook_concurrency: int = Field(
        default=4, ge=1, description="Webhooks one delivery worker posts to at the same time."
    )

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        driver_url(value)  # raises ValueError for anything we cannot serve
        return value

    def host_names(self) -> frozenset[str]:
        """The Host names allowed (lower case, without port), PUBLIC_URL's included."""
        names = {h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip()}
        if self.public_url:
            host = urlsplit(self.public_url).hostname
            if host:
                names.add(f"[{host}]" if ":" in host else host.lower())
        return frozenset(names)


def driver_url(raw: str) -> URL:
    """Map a database URL as people write it to one with the driver this project uses."""
    raw = raw.strip()
    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw[len("postgres://") :]
    try:
        url = make_url(raw)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a clear message
        raise ValueError(f"DATABASE_URL is not a database URL: {exc}") from exc
    backend = url.get_backend_name()
    if backend == "sqlite":
        return url.set(drivername="sqlite+pysqlite")
    if backend == "postgresql":
        return url.set(drivername="postgresql+psycopg")
    raise ValueError(f"DATABASE_URL must be sqlite:///PATH or postgresql://…, not {backend!r}")


@lru_cache
def get_settings() -> Settings:
    return Settings()


def app_settings(request: Request) -> Settings:
    """The settings the app was made with (`app.state`, set in `create_app`), typed."""
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(app_settings)]


# docs/configuration.md: the table between these two lines is generated from `Settings`.
TABLE_BEGIN = "<!-- settings table: generated by `python -m app.config docs/configuration.md` -->"
TABLE_END = "<!-- end of settings table -->"


def _default_text(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    if isinstance(value, date):
        return f"`{value.isoformat()}`"
    return f"`{value}`"


def settings_table() -> str:
    """The Markdown table of every setting: its environment variable, default and description."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        lines.append(f"| `{name.upper()}` | {_default_text(field.default)} | {description} |")
    return "\n".join(lines)


def render_settings_doc(text: str) -> str:
    """`text` (a Markdown document) with the generated table put between its two marker lines."""
    head, begin, rest = text.partition(TABLE_BEGIN)
    _, end, tail = rest.partition(TABLE_END)
    if not begin or not end:
        raise ValueError(f"the document lacks the lines {TABLE_BEGIN!r} and {TABLE_END!r}")
    return f"{head}{TABLE_BEGIN}\n{settings_table()}\n{TABLE_END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.config", description="Rewrite the settings table of a Markdown document."
    )
    parser.add_argument("document", type=Path, help="e.g. docs/configuration.md")
    args = parser.parse_args(argv)
    args.document.write_text(render_settings_doc(args.document.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
