"""Alembic, driven from the code: the CLI's `db upgrade`, `serve`, `demo` and `/readyz` use it.
The migrations in `migrations/` are the only way the schema is made.

A source checkout (and an editable install) keeps `migrations/` and `alembic.ini` beside the `app`
package; the wheel carries them inside it, as `app/migrations` and `app/alembic.ini` (see
`[tool.hatch.build.targets.wheel.force-include]` in pyproject.toml)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from app.config import driver_url

PACKAGE = Path(__file__).resolve().parent

# The full-text search objects of migration 0023 are made by hand (a tsvector column with its
# GIN index kept by triggers on PostgreSQL, FTS5 tables and their shadow tables on SQLite) and
# have no model: autogenerate and `alembic check` leave them out.
FULL_TEXT_TABLES = ("letters_fts", "actors_fts")


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Alembic's filter of what autogenerate compares: all but the full-text search objects."""
    if name is None:
        return True
    if type_ == "table":
        return not name.startswith(FULL_TEXT_TABLES)
    if type_ == "column":
        return name != "search_vector"
    return not (type_ == "index" and name.endswith("_search_vector"))


def migrations_home() -> Path:
    """The folder holding `migrations/` and `alembic.ini`: the package's own copy first (an
    installed wheel), then the checkout around the package."""
    for home in (PACKAGE, PACKAGE.parent):
        if (home / "migrations" / "env.py").is_file() and (home / "alembic.ini").is_file():
            return home
    raise RuntimeError(
        f"no migrations found in {PACKAGE} or {PACKAGE.parent}: build the wheel with pyproject.toml's "
        "build backend, or run from a source checkout"
    )


def alembic_config(database_url: str) -> Config:
    home = migrations_home()
    config = Config(str(home / "alembic.ini"))
    config.set_main_option("script_location", str(home / "migrations"))
    # alembic.ini puts the working directory on sys.path for the `alembic` command; here `app` is
    # imported already, and a service must not import from wherever it was started.
    config.set_main_option("prepend_sys_path", "")
    config.set_main_option(
        "sqlalchemy.url", driver_url(database_url).render_as_string(hide_password=False).replace("%", "%%")
    )
    config.attributes["configure_logging"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
