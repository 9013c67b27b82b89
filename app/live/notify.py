"""Telling every process that a letter's reads may have changed.

On PostgreSQL a write sends `NOTIFY undersigned_letters, '<letter id>'` (or `'*'`: possibly any
letter) in its own transaction, so the message is delivered when, and only if, it commits; the
processes serving counts streams LISTEN on that channel (`app.live.watch`). The message is a
hint: a listener reads the letters' versions to learn what changed. PostgreSQL delivers equal
messages of one transaction once, so a bulk write that touches a letter many times sends one.
SQLite has no such channel: its processes poll the versions instead."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text, cast, func, text
from sqlalchemy.orm import Session

CHANNEL = "undersigned_letters"
ANY = "*"

_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def letters_changed(session: Session, letter_id: int | None = None) -> None:
    """Say, on commit, that the letter `letter_id` (None: any letter) may read differently."""
    if session.get_bind().dialect.name != "postgresql":
        return
    payload = ANY if letter_id is None else str(letter_id)
    session.connection().execute(_NOTIFY, {"channel": CHANNEL, "payload": payload})


def notifying(letter_id: Any) -> Any:
    """`letters_changed` for the letter `letter_id` (a column) as a PostgreSQL expression, for
    the RETURNING of the statement that bumps its version: the hottest writes (a signature) send
    their message without a round trip of their own, while they hold their letter's locks."""
    return func.pg_notify(CHANNEL, cast(letter_id, Text))


def parse(payload: str) -> set[int] | None:
    """The letter ids a message names; None for any letter (or a message we cannot read)."""
    ids: set[int] = set()
    for part in payload.split(","):
        if not part.strip().isdigit():
            return None
        ids.add(int(part))
    return ids
