"""A new actor's search document without the per-row work it does not need.

A new actor cannot have aliases yet (an alias refers to its actor's row, which the insert is
making), so looking them up on INSERT was wasted work on every new actor. On PostgreSQL the
document is now written once, by `actor_search_vector(name, sort_name, aliases)`, which the
triggers call and a set-based insert can call too: the insert trigger runs only when the
insert leaves `search_vector` empty, so the dump load computes every document in its one
INSERT … SELECT instead of a trigger call per row. An update of the name or sort name (and an
alias written, through its own trigger) still makes the document again with the aliases.

SQLite is left as it is: its FTS5 rows are written by AFTER triggers whose alias lookup (by the
aliases' actor index) cost nothing measurable beside the FTS5 insert itself.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_POSTGRESQL_UP = r"""
CREATE FUNCTION actor_search_vector(name text, sort_name text, aliases text) RETURNS tsvector
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('undersigned', name || ' ' || coalesce(sort_name, '')), 'A')
        || setweight(to_tsvector('undersigned', coalesce(aliases, '')), 'B')
$$;

CREATE OR REPLACE FUNCTION actors_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.search_vector := actor_search_vector(NEW.name, NEW.sort_name, NULL);
    ELSE
        NEW.search_vector := actor_search_vector(NEW.name, NEW.sort_name,
            (SELECT string_agg(name, ' ') FROM actor_aliases WHERE actor_id = NEW.id));
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER actors_search_vector ON actors;
CREATE TRIGGER actors_search_vector BEFORE UPDATE OF name, sort_name
    ON actors FOR EACH ROW EXECUTE FUNCTION actors_search_vector();
CREATE TRIGGER actors_search_vector_insert BEFORE INSERT ON actors
    FOR EACH ROW WHEN (NEW.search_vector IS NULL) EXECUTE FUNCTION actors_search_vector();
"""

_POSTGRESQL_DOWN = r"""
DROP TRIGGER actors_search_vector_insert ON actors;
DROP TRIGGER actors_search_vector ON actors;
CREATE OR REPLACE FUNCTION actors_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_vector :=
        setweight(to_tsvector('undersigned', NEW.name || ' ' || coalesce(NEW.sort_name, '')), 'A')
        || setweight(to_tsvector('undersigned', coalesce(
            (SELECT string_agg(name, ' ') FROM actor_aliases WHERE actor_id = NEW.id), '')), 'B');
    RETURN NEW;
END $$;
CREATE TRIGGER actors_search_vector BEFORE INSERT OR UPDATE OF name, sort_name
    ON actors FOR EACH ROW EXECUTE FUNCTION actors_search_vector();
DROP FUNCTION actor_search_vector(text, text, text);
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_POSTGRESQL_UP)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_POSTGRESQL_DOWN)
