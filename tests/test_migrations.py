"""The migrations are the schema: they go up and down cleanly, match the models exactly (what
`alembic check` checks in CI) and carry existing data forward."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import CheckConstraint, Engine, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import migrate, rollups
from app.config import Settings
from app.db.engine import create_engine_for
from app.models import Actor, Base, Campaign, Letter, Signature
from app.names import variant_key


@pytest.fixture
def fresh_engine(fresh_database_url: str) -> Iterator[Engine]:
    engine = create_engine_for(Settings(database_url=fresh_database_url))
    yield engine
    engine.dispose()


def _tables(engine: Engine) -> set[str]:
    """The tables of the models (not alembic's, nor the full-text search's own)."""
    names = set(inspect(engine).get_table_names()) - {"alembic_version"}
    return {name for name in names if not name.startswith(migrate.FULL_TEXT_TABLES)}


def _revisions() -> list[str]:
    """Every revision, base first."""
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def test_one_linear_history() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, f"several heads: {script.get_heads()}; chain down_revision"
    assert _revisions()[-1] == migrate.head_revision()


def test_upgrade_downgrade_upgrade(fresh_database_url: str, fresh_engine: Engine) -> None:
    assert migrate.current_revision(fresh_engine) is None
    migrate.upgrade(fresh_database_url)
    assert migrate.current_revision(fresh_engine) == migrate.head_revision()
    assert _tables(fresh_engine) == set(Base.metadata.tables)

    command.downgrade(migrate.alembic_config(fresh_database_url), "base")
    fresh_engine.dispose()  # forget cached table metadata and pooled connections
    assert migrate.current_revision(fresh_engine) is None
    assert _tables(fresh_engine) == set()

    migrate.upgrade(fresh_database_url)
    assert migrate.current_revision(fresh_engine) == migrate.head_revision()
    assert _tables(fresh_engine) == set(Base.metadata.tables)


def test_models_and_migrations_agree(fresh_database_url: str, fresh_engine: Engine) -> None:
    """The equivalent of `alembic check`: autogenerate finds nothing to add, drop or alter."""
    migrate.upgrade(fresh_database_url)
    with fresh_engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": False,
                "render_as_batch": True,
                "include_object": migrate.include_object,
            },
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations differ; add a migration: {diff}"


def test_a_populated_database_survives_upgrade(fresh_database_url: str, fresh_engine: Engine) -> None:
    """Data written at the first revision is still there, readable by today's models, at head."""
    first = _revisions()[0]
    migrate.upgrade(fresh_database_url, first)
    now = datetime(2020, 9, 9, 12, tzinfo=UTC)
    with fresh_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO campaigns (id, slug, name, created_at, updated_at) "
                "VALUES (1, 'xinjiang-2020', 'Xinjiang 2020', :now, :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO letters (id, slug, title, published_on, status, claimed_signatory_count, "
                "campaign_id, search_text, version, created_at, updated_at) VALUES (1, 'l-130', "
                "'A letter', :day, 'published', 130, 1, 'a letter', 1, :now, :now)"
            ),
            {"day": date(2020, 9, 8), "now": now},
        )
        conn.execute(
            text(
                "INSERT INTO actors (id, kind, name, match_name, search_text, created_at, updated_at) "
                "VALUES (1, 'person', 'Siobhain McDonagh', 'siobhain mcdonagh', 'siobhain mcdonagh', "
                ":now, :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO signatures (id, letter_id, actor_id, signed_on, status, created_at, updated_at) "
                "VALUES (1, 1, 1, :day, 'confirmed', :now, :now)"
            ),
            {"day": date(2020, 9, 8), "now": now},
        )

    migrate.upgrade(fresh_database_url)
    assert migrate.current_revision(fresh_engine) == migrate.head_revision()
    with Session(fresh_engine) as session:
        letter = session.scalars(select(Letter)).one()
        assert (letter.slug, letter.claimed_signatory_count, letter.published_on) == (
            "l-130",
            130,
            date(2020, 9, 8),
        )
        assert session.scalars(select(Campaign.slug)).all() == ["xinjiang-2020"]
        assert session.scalars(select(Actor.name)).all() == ["Siobhain McDonagh"]
        signature = session.scalars(select(Signature)).one()
        assert (signature.letter_id, signature.actor_id, signature.signed_on) == (1, 1, date(2020, 9, 8))
        # The rollups migration filled in what the signatures already said.
        kept = rollups.snapshot(session)
        assert kept == {(1, date(2020, 9, 8), "person", "", "", 0, 0, 1, 0)}
        rollups.rebuild(session)
        assert rollups.snapshot(session) == kept


def test_check_constraints_refuse_existing_rows_by_name(
    fresh_database_url: str, fresh_engine: Engine
) -> None:
    """0022 adds the vocabularies' CHECK constraints; a database holding a value outside one is
    left as it was, and the error names each bad row."""
    migrate.upgrade(fresh_database_url, "0021")
    now = datetime(2020, 9, 9, 12, tzinfo=UTC)
    with fresh_engine.begin() as conn:
        for ident, kind in ((1, "person"), (2, "robot"), (3, "Organisation")):
            conn.execute(
                text(
                    "INSERT INTO actors (id, kind, name, match_name, search_text, variant_key, created_at, "
                    "updated_at) VALUES (:id, :kind, 'A', 'a', 'a', 'a', :now, :now)"
                ),
                {"id": ident, "kind": kind, "now": now},
            )
        conn.execute(
            text(
                "INSERT INTO letters (id, slug, title, status, search_text, version, created_at, updated_at) "
                "VALUES (7, 'l', 'L', 'pending', 'l', 1, :now, :now)"
            ),
            {"now": now},
        )
    with pytest.raises(RuntimeError) as refused:
        migrate.upgrade(fresh_database_url)
    message = str(refused.value)
    assert (
        "actors.kind must be one of person, organisation; 2 rows are not (id 2: 'robot', id 3: 'Organisation')"
        in message
    )
    assert (
        "letters.status must be one of draft, open, published, delivered, closed, withdrawn; 1 rows are not (id 7: 'pending')"
        in message
    )
    fresh_engine.dispose()
    assert migrate.current_revision(fresh_engine) == "0021"
    assert not any(
        c["name"] == "ck_actors_kind" for c in inspect(fresh_engine).get_check_constraints("actors")
    )

    with fresh_engine.begin() as conn:
        conn.execute(text("UPDATE actors SET kind = 'organisation' WHERE id IN (2, 3)"))
        conn.execute(text("UPDATE letters SET status = 'open' WHERE id = 7"))
    migrate.upgrade(fresh_database_url)
    fresh_engine.dispose()
    assert migrate.current_revision(fresh_engine) == migrate.head_revision()
    with pytest.raises(IntegrityError), fresh_engine.begin() as conn:
        conn.execute(text("UPDATE actors SET kind = 'robot' WHERE id = 1"))


def test_models_declare_the_check_constraints_the_migrations_make(
    fresh_database_url: str, fresh_engine: Engine
) -> None:
    """`alembic check` does not compare CHECK constraints: their names are compared here."""
    migrate.upgrade(fresh_database_url)
    inspector = inspect(fresh_engine)
    for table in Base.metadata.sorted_tables:
        declared = {c.name for c in table.constraints if isinstance(c, CheckConstraint)}
        made = {c["name"] for c in inspector.get_check_constraints(table.name)}
        assert made == declared, table.name


def test_actors_imported_without_a_variant_key_get_theirs(
    fresh_database_url: str, fresh_engine: Engine
) -> None:
    """0025 gives the actors that imports wrote with an empty variant key the key of their name,
    and leaves the keys already set alone."""
    migrate.upgrade(fresh_database_url, "0024")
    now = datetime(2020, 9, 9, 12, tzinfo=UTC)
    with fresh_engine.begin() as conn:
        for ident, kind, name, key in (
            (1, "person", "Sir Edward Davey", ""),
            (2, "organisation", "Amnesty Intl", ""),
            (3, "organisation", "Oxfam", "kept as it was"),
        ):
            conn.execute(
                text(
                    "INSERT INTO actors (id, kind, name, match_name, search_text, variant_key, created_at, "
                    "updated_at) VALUES (:id, :kind, :name, 'm', 's', :key, :now, :now)"
                ),
                {"id": ident, "kind": kind, "name": name, "key": key, "now": now},
            )
    migrate.upgrade(fresh_database_url)
    with fresh_engine.connect() as conn:
        rows = conn.execute(text("SELECT id, variant_key FROM actors")).all()
    keys = {int(ident): str(key) for ident, key in rows}
    fresh_engine.dispose()
    assert keys == {
        1: variant_key("Sir Edward Davey", "person"),
        2: variant_key("Amnesty International", "organisation"),
        3: "kept as it was",
    }
