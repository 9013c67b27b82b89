"""Full-text search of letters and actors with the database's own index, kept by triggers.

The documents: a letter's title and its campaign's name, its summary, its body; an actor's name
and sort name, its aliases. Triggers keep them in step on every write, whichever path makes it
(the API, imports, dump loads with COPY, the demo, a hand-made SQL statement): a letter written,
a campaign renamed, an actor written, an alias added, changed or removed, a row deleted.

- PostgreSQL: a `search_vector` tsvector column on `letters` and `actors` with a GIN index,
  set by BEFORE triggers with the `undersigned` text search configuration (the english parser,
  `unaccent`, the english Snowball stemmer without stop words, so "the" or "a" stay searchable
  as SQLite's porter tokenizer keeps them). Renaming a campaign or changing an alias re-sets
  the column of the rows concerned through their triggers.
- SQLite: FTS5 tables `letters_fts` and `actors_fts` (rowid = the row's id) with the porter
  tokenizer over unicode61 without diacritics, written by AFTER triggers.

A later migration that rebuilds `letters`, `actors`, `actor_aliases` or `campaigns` on SQLite
(batch mode copies the table) drops their triggers and must make them again.

These objects are outside the models' metadata: migrations/env.py leaves them out of
`alembic check`.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_POSTGRESQL_UP = r"""
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE TEXT SEARCH DICTIONARY undersigned_stem (TEMPLATE = snowball, Language = english);
CREATE TEXT SEARCH CONFIGURATION undersigned (COPY = english);
ALTER TEXT SEARCH CONFIGURATION undersigned
    ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part
    WITH unaccent, undersigned_stem;

ALTER TABLE letters ADD COLUMN search_vector tsvector;
ALTER TABLE actors ADD COLUMN search_vector tsvector;

CREATE FUNCTION letters_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_vector :=
        setweight(to_tsvector('undersigned', coalesce(NEW.title, '')), 'A')
        || setweight(to_tsvector('undersigned', coalesce(
            (SELECT name FROM campaigns WHERE id = NEW.campaign_id), '')), 'B')
        || setweight(to_tsvector('undersigned', coalesce(NEW.summary, '')), 'B')
        || setweight(to_tsvector('undersigned', coalesce(NEW.body, '')), 'D');
    RETURN NEW;
END $$;
CREATE TRIGGER letters_search_vector BEFORE INSERT OR UPDATE OF title, summary, body, campaign_id
    ON letters FOR EACH ROW EXECUTE FUNCTION letters_search_vector();

-- A renamed campaign: its letters' documents are made again (through their own trigger).
CREATE FUNCTION campaigns_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE letters SET campaign_id = campaign_id WHERE campaign_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER campaigns_search_vector AFTER UPDATE OF name ON campaigns
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION campaigns_search_vector();

CREATE FUNCTION actors_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_vector :=
        setweight(to_tsvector('undersigned', NEW.name || ' ' || coalesce(NEW.sort_name, '')), 'A')
        || setweight(to_tsvector('undersigned', coalesce(
            (SELECT string_agg(name, ' ') FROM actor_aliases WHERE actor_id = NEW.id), '')), 'B');
    RETURN NEW;
END $$;
CREATE TRIGGER actors_search_vector BEFORE INSERT OR UPDATE OF name, sort_name
    ON actors FOR EACH ROW EXECUTE FUNCTION actors_search_vector();

-- An alias added, changed or removed: its actor's document is made again.
CREATE FUNCTION actor_aliases_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE actors SET name = name WHERE id = OLD.actor_id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        UPDATE actors SET name = name WHERE id = NEW.actor_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER actor_aliases_search_vector AFTER INSERT OR UPDATE OR DELETE ON actor_aliases
    FOR EACH ROW EXECUTE FUNCTION actor_aliases_search_vector();

UPDATE letters SET campaign_id = campaign_id;
UPDATE actors SET name = name;
CREATE INDEX ix_letters_search_vector ON letters USING gin (search_vector);
CREATE INDEX ix_actors_search_vector ON actors USING gin (search_vector);
"""

_POSTGRESQL_DOWN = """
DROP TRIGGER actor_aliases_search_vector ON actor_aliases;
DROP TRIGGER actors_search_vector ON actors;
DROP TRIGGER campaigns_search_vector ON campaigns;
DROP TRIGGER letters_search_vector ON letters;
DROP FUNCTION actor_aliases_search_vector();
DROP FUNCTION actors_search_vector();
DROP FUNCTION campaigns_search_vector();
DROP FUNCTION letters_search_vector();
ALTER TABLE actors DROP COLUMN search_vector;
ALTER TABLE letters DROP COLUMN search_vector;
DROP TEXT SEARCH CONFIGURATION undersigned;
DROP TEXT SEARCH DICTIONARY undersigned_stem;
"""

_LETTER_ROW = (
    "INSERT INTO letters_fts(rowid, title, campaign, summary, body) VALUES (new.id, new.title, "
    "(SELECT name FROM campaigns WHERE id = new.campaign_id), new.summary, new.body);"
)
_ALIASES = "(SELECT group_concat(name, ' ') FROM actor_aliases WHERE actor_id = {id})"
_ACTOR_ROW = (
    "INSERT INTO actors_fts(rowid, name, aliases) VALUES (new.id, "
    f"new.name || ' ' || coalesce(new.sort_name, ''), {_ALIASES.format(id='new.id')});"
)

_SQLITE_UP = [
    "CREATE VIRTUAL TABLE letters_fts USING fts5(title, campaign, summary, body, "
    "tokenize = 'porter unicode61 remove_diacritics 2')",
    "CREATE VIRTUAL TABLE actors_fts USING fts5(name, aliases, "
    "tokenize = 'porter unicode61 remove_diacritics 2')",
    f"CREATE TRIGGER letters_fts_insert AFTER INSERT ON letters BEGIN {_LETTER_ROW} END",
    "CREATE TRIGGER letters_fts_update AFTER UPDATE OF id, title, summary, body, campaign_id ON letters "
    f"BEGIN DELETE FROM letters_fts WHERE rowid = old.id; {_LETTER_ROW} END",
    "CREATE TRIGGER letters_fts_delete AFTER DELETE ON letters "
    "BEGIN DELETE FROM letters_fts WHERE rowid = old.id; END",
    "CREATE TRIGGER campaigns_fts_update AFTER UPDATE OF name ON campaigns BEGIN "
    "UPDATE letters_fts SET campaign = new.name "
    "WHERE rowid IN (SELECT id FROM letters WHERE campaign_id = new.id); END",
    f"CREATE TRIGGER actors_fts_insert AFTER INSERT ON actors BEGIN {_ACTOR_ROW} END",
    "CREATE TRIGGER actors_fts_update AFTER UPDATE OF id, name, sort_name ON actors "
    f"BEGIN DELETE FROM actors_fts WHERE rowid = old.id; {_ACTOR_ROW} END",
    "CREATE TRIGGER actors_fts_delete AFTER DELETE ON actors "
    "BEGIN DELETE FROM actors_fts WHERE rowid = old.id; END",
    "CREATE TRIGGER actor_aliases_fts_insert AFTER INSERT ON actor_aliases BEGIN "
    f"UPDATE actors_fts SET aliases = {_ALIASES.format(id='new.actor_id')} WHERE rowid = new.actor_id; END",
    "CREATE TRIGGER actor_aliases_fts_update AFTER UPDATE ON actor_aliases BEGIN "
    f"UPDATE actors_fts SET aliases = {_ALIASES.format(id='old.actor_id')} WHERE rowid = old.actor_id; "
    f"UPDATE actors_fts SET aliases = {_ALIASES.format(id='new.actor_id')} WHERE rowid = new.actor_id; END",
    "CREATE TRIGGER actor_aliases_fts_delete AFTER DELETE ON actor_aliases BEGIN "
    f"UPDATE actors_fts SET aliases = {_ALIASES.format(id='old.actor_id')} WHERE rowid = old.actor_id; END",
    "INSERT INTO letters_fts(rowid, title, campaign, summary, body) SELECT letters.id, letters.title, "
    "campaigns.name, letters.summary, letters.body FROM letters "
    "LEFT JOIN campaigns ON campaigns.id = letters.campaign_id",
    "INSERT INTO actors_fts(rowid, name, aliases) SELECT id, name || ' ' || coalesce(sort_name, ''), "
    f"{_ALIASES.format(id='actors.id')} FROM actors",
]

_SQLITE_TRIGGERS = [
    "letters_fts_insert",
    "letters_fts_update",
    "letters_fts_delete",
    "campaigns_fts_update",
    "actors_fts_insert",
    "actors_fts_update",
    "actors_fts_delete",
    "actor_aliases_fts_insert",
    "actor_aliases_fts_update",
    "actor_aliases_fts_delete",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_POSTGRESQL_UP)
        return
    for statement in _SQLITE_UP:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_actors_search_vector; DROP INDEX ix_letters_search_vector;")
        op.execute(_POSTGRESQL_DOWN)
        return
    for trigger in _SQLITE_TRIGGERS:
        op.execute(f"DROP TRIGGER {trigger}")
    op.execute("DROP TABLE actors_fts")
    op.execute("DROP TABLE letters_fts")
