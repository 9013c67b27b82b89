"""The `undersigned` command."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
import uvicorn
from sqlalchemy import select

from app import migrate
from app.auth import SCOPES, hash_key, new_key
from app.config import get_settings
from app.db import Database, create_engine_for, session_scope
from app.models import ApiKey

cli = typer.Typer(
    help="Undersigned: a registry of open letters, their signatories and recipients.",
    no_args_is_help=True,
    add_completion=False,
)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_cli = typer.Typer(help="API keys for writes.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(keys_cli, name="keys")


def _database() -> Database:
    return Database(create_engine_for(get_settings()))


@db_cli.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Bring the schema to the newest migration (or REVISION)."""
    migrate.upgrade(get_settings().database_url, revision)
    typer.echo(f"schema at {revision}")


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
    settings = get_settings()
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


def main() -> None:
    cli()
