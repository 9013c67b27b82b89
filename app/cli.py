"""The `undersigned` command."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import select

from app import migrate
from app.auth import SCOPES, hash_key, new_key
from app.config import get_settings
from app.db.database import Database, session_scope
from app.db.engine import create_engine_for
from app.models import ApiKey

cli = typer.Typer(
    help="Undersigned: a registry of open letters, their signatories and recipients.",
    no_args_is_help=True,
    add_completion=False,
)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_cli = typer.Typer(help="API keys for writes.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
actors_cli = typer.Typer(help="Actors: merge the ones that are one.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")
cli.add_typer(actors_cli, name="actors")
webhooks_cli = typer.Typer(help="Webhook deliveries.", no_args_is_help=True)
cli.add_typer(webhooks_cli, name="webhooks")


def _database() -> Database:
    """The CLI's database. Its bulk work (loads, imports, rebuilds) runs statements far longer
    than any request's, so the statement timeout that guards the service does not apply."""
    return Database(create_engine_for(get_settings().model_copy(update={"statement_timeout_ms": 0})))


@db_cli.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Bring the schema to the newest migration (or REVISION)."""
    migrate.upgrade(get_settings().database_url, revision)
    typer.echo(f"schema at {revision}")


@db_cli.command("rebuild-rollups")
def db_rebuild_rollups() -> None:
    """Recompute the letters' rollups and pair counts from the signatures, and say whether
    they had drifted."""
    from app import pairs, rollups

    database = _database()
    try:
        with session_scope(database.write_sessions) as session:
            kept = rollups.snapshot(session)
            rows = rollups.rebuild(session)
            drift = len(kept ^ rollups.snapshot(session))
            kept_pairs = pairs.snapshot(session)
            pair_rows = pairs.rebuild(session)
            pair_drift = len(kept_pairs ^ pairs.snapshot(session))
    finally:
        database.dispose()
    typer.echo(f"rebuilt {rows} rollup rows; {drift} differed from the ones kept by the writes")
    typer.echo(f"rebuilt {pair_rows} pair rows; {pair_drift} differed from the ones kept by the writes")


@cli.command()
def demo() -> None:
    """Load the demo data (the two letters of September 2020 on the Uighurs). Idempotent."""
    from app.demo.loader import load_demo

    settings = get_settings()
    migrate.upgrade(settings.database_url)
    database = _database()
    try:
        with session_scope(database.write_sessions) as session:
            loaded = load_demo(session)
    finally:
        database.dispose()
    typer.echo("demo data loaded" if loaded else "demo data already present; nothing changed")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    demo_data: Annotated[
        bool, typer.Option("--demo", help="Load the demo data into an empty database.")
    ] = False,
) -> None:
    """Migrate the database to the newest schema, then serve the API."""
    import uvicorn  # here: the other commands start 70 ms sooner without it

    from app.live.files import files_needed, raise_open_file_limit

    settings = get_settings()
    limit, warning = raise_open_file_limit(files_needed(settings))
    typer.echo(f"open-file limit: {limit}" + (f"; warning: {warning}" if warning else ""), err=True)
    migrate.upgrade(settings.database_url)
    if demo_data:
        demo()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level,
        proxy_headers=True,
        backlog=4096,  # a burst of readers reconnecting their counts streams at once
        access_log=False,  # ours is structured, with the request id (app.observability)
    )


@keys_cli.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A unique name for the key (shown in change records).")],
    scope: Annotated[str, typer.Option(help="write or admin.")] = "write",
    rate_limit: Annotated[
        int | None, typer.Option("--rate-limit", min=1, help="Writes a minute for this key (default: none).")
    ] = None,
) -> None:
    """Create a key. The key is printed once, alone on the last line; only its hash is kept."""
    if scope not in SCOPES:
        raise typer.BadParameter(f"scope must be one of {', '.join(SCOPES)}", param_hint="--scope")
    name = name.strip()
    if not name:
        raise typer.BadParameter("must not be empty", param_hint="--name")
    migrate.upgrade(get_settings().database_url)
    database = _database()
    try:
        with session_scope(database.write_sessions) as session:
            if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
                typer.echo(f"error: a key named {name!r} exists already", err=True)
                raise typer.Exit(1)
            key, prefix = new_key()
            session.add(
                ApiKey(
                    name=name,
                    prefix=prefix,
                    key_hash=hash_key(key),
                    scope=scope,
                    rate_limit_per_minute=rate_limit,
                )
            )
    finally:
        database.dispose()
    typer.echo(f"created key {name!r} with scope {scope}; it is shown once:")
    typer.echo(key)


@keys_cli.command("list")
def keys_list() -> None:
    """List keys (names, scopes, dates; never the secrets)."""
    migrate.upgrade(get_settings().database_url)
    database = _database()
    try:
        with session_scope(database.read_sessions) as session:
            keys = session.scalars(select(ApiKey).order_by(ApiKey.name)).all()
            for k in keys:
                state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
                typer.echo(f"{k.name}\t{k.scope}\tcreated {k.created_at:%Y-%m-%d %H:%M}\t{state}")
    finally:
        database.dispose()


@keys_cli.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke a key at once."""
    migrate.upgrade(get_settings().database_url)
    database = _database()
    try:
        with session_scope(database.write_sessions) as session:
            key = session.scalar(select(ApiKey).where(ApiKey.name == name))
            if key is None:
                typer.echo(f"error: no key named {name!r}", err=True)
                raise typer.Exit(1)
            if key.revoked_at is None:
                key.revoked_at = datetime.now(UTC)
    finally:
        database.dispose()
    typer.echo(f"revoked key {name!r}")


@actors_cli.command("merge")
def actors_merge(
    keep: Annotated[int, typer.Argument(help="The actor kept.")],
    others: Annotated[list[int], typer.Argument(help="The actors folded into it.")],
    force: Annotated[
        bool,
        typer.Option("--force", help="Merge even when they hold different values of an identifier scheme."),
    ] = False,
) -> None:
    """Fold actors into one, as POST /v1/actors/{KEEP}/merge does (the change record names `cli`)."""
    from app.actors import identity
    from app.auth import Writer
    from app.errors import AppError

    migrate.upgrade(get_settings().database_url)
    database = _database()
    try:
        with session_scope(database.write_sessions) as session:
            result = identity.merge_actors(Writer(session, "cli", "admin"), keep, others, force=force)
            name = result.actor.name
    except AppError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    finally:
        database.dispose()
    typer.echo(
        f"merged {', '.join(map(str, result.merged))} into {keep} ({name}): "
        f"{result.signatures_moved} signature(s) moved, {result.signatures_folded} folded into one"
    )


# --- Imports, exports and whole-registry dumps -------------------------------------------------


@cli.command("import-signatures")
def import_signatures_command(
    letter: Annotated[str, typer.Argument(help="The letter's slug.")],
    file: Annotated[
        Path, typer.Argument(help="A CSV file, or a JSON array (.json).", exists=True, dir_okay=False)
    ],
    kind: Annotated[str, typer.Option(help="Kind of rows without a kind column: person or organisation.")] = (
        "organisation"
    ),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would happen; write nothing.")
    ] = False,
    on_ambiguous: Annotated[
        str, typer.Option("--on-ambiguous", help="report (default) or create: new actors for ambiguous rows.")
    ] = "report",
    column: Annotated[
        list[str] | None,
        typer.Option(
            "--column", help="Rename a column: OLD:NEW or OLD=NEW (e.g. Organisation:name); repeatable."
        ),
    ] = None,
    keep_dates: Annotated[
        bool,
        typer.Option(
            "--keep-dates", help="Take signed_on and withdrawn_on from the file (ignored without it)."
        ),
    ] = False,
    report: Annotated[Path | None, typer.Option(help="Write the full JSON report to this file.")] = None,
) -> None:
    """Add signatures to LETTER from FILE, matching actors as the import endpoint does."""
    import json

    from rich.progress import Progress

    from app.errors import AppError, Invalid
    from app.imports import service
    from app.imports.parsing import Shape, parse_renames, read_csv, read_json
    from app.vocabulary import ACTOR_KINDS, spelled

    if kind not in ACTOR_KINDS:
        raise typer.BadParameter(f"must be {spelled(ACTOR_KINDS)}", param_hint="--kind")
    if on_ambiguous not in ("report", "create"):
        raise typer.BadParameter("must be report or create", param_hint="--on-ambiguous")
    try:
        renames = parse_renames(column or [], "--column")
    except Invalid as exc:
        raise typer.BadParameter(exc.detail, param_hint="--column") from None
    settings = get_settings()
    migrate.upgrade(settings.database_url)
    options = service.ImportOptions(
        default_kind=kind,
        dry_run=dry_run,
        on_ambiguous="create" if on_ambiguous == "create" else "report",
        scorer=settings.match_scorer,
        threshold=settings.match_threshold,
        possible_threshold=settings.match_possible_threshold,
        rows_per_status=settings.import_report_rows,
        keep_dates=keep_dates,
    )
    database = _database()
    failed = False
    try:
        data = file.read_bytes()
        shape = Shape(settings.max_csv_columns, settings.max_line_bytes, settings.max_json_depth)
        if file.suffix.lower() == ".json":
            rows = read_json(data, renames, shape=shape)
        else:
            rows = read_csv(data, renames, shape=shape)[1]
        with Progress(transient=False) as bar:
            tasks: dict[str, Any] = {}

            def progress(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(phase, total=total or 1)
                bar.update(tasks[phase], completed=done)

            try:
                with session_scope(database.write_sessions) as session:
                    result = service.import_signatures(
                        session, "cli", letter, rows, options, progress=progress
                    )
            except service.ImportFailed as exc:
                failed = True
                result = dict(exc.extra)
    except AppError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    finally:
        database.dispose()
    summary = result["summary"]
    typer.echo(", ".join(f"{k}: {v}" for k, v in summary.items()) + (" (dry run)" if dry_run else ""))
    for row in result["rows"]:
        if row["status"] in ("error", "ambiguous"):
            detail = row.get("error") or ", ".join(f"{c['name']} ({c['id']})" for c in row["candidates"])
            where = f"line {row['line']} (row {row['row']})" if "line" in row else f"row {row['row']}"
            typer.echo(f"{where}: {row['status']}: {detail}", err=True)
    for warning in result.get("warnings", []):
        typer.echo(f"warning: {warning}", err=True)
    if report is not None:
        report.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    if failed:
        typer.echo("error rows: nothing was imported", err=True)
        raise typer.Exit(1)


@cli.command("export")
def export_command(
    directory: Annotated[
        Path | None, typer.Argument(help="Folder to write one CSV per table into (created if needed).")
    ] = None,
    popolo: Annotated[
        Path | None,
        typer.Option(help="Write Popolo JSON (persons, organizations, memberships) to this file."),
    ] = None,
) -> None:
    """Dump the whole registry: one UTF-8 CSV per table in DIRECTORY, and/or Popolo JSON."""
    from app.imports.dump.export import export_registry
    from app.imports.dump.popolo import export_popolo

    if directory is None and popolo is None:
        raise typer.BadParameter("give a DIRECTORY, --popolo FILE, or both")
    database = _database()
    try:
        with session_scope(database.read_sessions) as session:
            if directory is not None:
                with _StepProgress() as progress:
                    written = export_registry(session, directory, progress=progress)
                typer.echo(f"wrote {sum(written.values())} rows in {len(written)} files to {directory}")
            if popolo is not None:
                with popolo.open("w", encoding="utf-8") as out:
                    counts = export_popolo(session, out)
                typer.echo(f"wrote Popolo to {popolo}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    finally:
        database.dispose()


@cli.command("import")
def import_command(
    directory: Annotated[
        Path | None, typer.Argument(help="A folder written by `export` (actors.csv at least).")
    ] = None,
    popolo: Annotated[Path | None, typer.Option(help="Read Popolo JSON from this file instead.")] = None,
) -> None:
    """Load a dump into the registry, all or nothing: kept as it is into an empty registry,
    actors matched as the import endpoint does into one with data."""
    import json

    from app.errors import AppError
    from app.imports.dump.files import directory_source
    from app.imports.dump.load import load_registry
    from app.imports.dump.popolo import popolo_source

    if (directory is None) == (popolo is None):
        raise typer.BadParameter("give either a DIRECTORY or --popolo FILE")
    settings = get_settings()
    migrate.upgrade(settings.database_url)
    database = _database()
    try:
        if popolo is not None:
            try:
                document = json.loads(popolo.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                typer.echo(f"error: {popolo} is not a readable JSON file: {exc}", err=True)
                raise typer.Exit(1) from exc
            if not isinstance(document, dict):
                typer.echo("error: a Popolo document is a JSON object", err=True)
                raise typer.Exit(1)
            source = popolo_source(document)
        else:
            assert directory is not None
            source = directory_source(directory)
        with _StepProgress() as progress, session_scope(database.write_sessions) as session:
            stats = load_registry(
                session,
                "cli",
                source,
                progress=progress,
                scorer=settings.match_scorer,
                threshold=settings.match_threshold,
            )
            progress("committing", 0)
    except AppError as exc:
        typer.echo(f"error: {exc.detail}; nothing was loaded", err=True)
        raise typer.Exit(1) from exc
    finally:
        database.dispose()
    typer.echo(
        f"loaded {sum(stats.rows.values())} rows: {stats.actors_created} actors created, "
        f"{stats.actors_matched} matched"
        + (f"; skipped as present already: {stats.skipped}" if stats.skipped else "")
    )


class _StepProgress:
    """Progress of an export or a load, on stderr, step by step: a file, or what is being done
    with it (inserting, indexing, …), each ending when the next begins. On a terminal: a live
    display, a line per step with a bar when its rows are known or estimated, the rows, rows/s
    and the time taken. Elsewhere (a log, a pipe): one line per step, when it ends."""

    def __init__(self) -> None:
        from rich.console import Console

        console = Console(stderr=True)
        self.display = _live_display(console) if console.is_terminal else None
        self.step: list[Any] | None = None  # [step, rows, started, display task]

    def __enter__(self) -> _StepProgress:
        if self.display is not None:
            self.display.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._end()
        if self.display is not None:
            self.display.stop()

    def __call__(self, step: str, done: int, total: int | None = None) -> None:
        if self.step is None or self.step[0] != step:
            self._end()
            task = self.display.add_task(step, total=total) if self.display is not None else None
            self.step = [step, done, time.monotonic(), task]
        self.step[1] = done
        if self.display is not None:
            self.display.update(self.step[3], completed=done, total=total)

    def _end(self) -> None:
        if self.step is None:
            return
        step, done, started, task = self.step
        self.step = None
        if self.display is not None:
            self.display.update(task, completed=done, total=done)
            return
        rows = f"{done:,} rows, " if done or step.endswith(".csv") else ""
        typer.echo(f"{step}: {rows}{time.monotonic() - started:.1f} s", err=True)


def _live_display(console: Any) -> Any:
    from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, Task, TimeElapsedColumn
    from rich.table import Column
    from rich.text import Text

    class Rows(ProgressColumn):
        """Rows done and rows/s (nothing for a step without rows)."""

        def render(self, task: Task) -> Text:
            if not task.completed and not task.description.endswith(".csv"):
                return Text("")
            seconds = task.finished_time if task.finished_time is not None else task.elapsed
            rate = f"{task.completed / seconds:>10,.0f} rows/s" if seconds and task.completed else ""
            return Text(f"{task.completed:>12,} rows {rate}", style="progress.data.speed")

    return Progress(
        SpinnerColumn(finished_text="✓"),
        "{task.description}",
        BarColumn(),
        Rows(table_column=Column(min_width=34)),
        TimeElapsedColumn(),
        console=console,
    )


@webhooks_cli.command("run")
def webhooks_run() -> None:
    """Deliver webhooks in this process until interrupted (beside `serve`, or instead of its own
    worker with WEBHOOK_WORKER=false). Several may run at once against one PostgreSQL."""
    import asyncio
    import signal

    from app.webhooks.worker import DeliveryWorker

    settings = get_settings()
    migrate.upgrade(settings.database_url)
    database = Database(create_engine_for(settings))

    async def run() -> None:
        worker = DeliveryWorker(database, settings)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, worker.stop)
        typer.echo("delivering webhooks; Ctrl-C to stop")  # (once a stop would be clean)
        await worker.run()

    try:
        asyncio.run(run())
    finally:
        database.dispose()


def main() -> None:
    cli()
