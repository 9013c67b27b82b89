"""A real uvicorn serving the app on a free loopback port, for tests that need a socket:
SSE streams, browsers, concurrent writers. It serves a migrated database (the test's own,
`migrated_database_url`, or the session's), with a write key ready."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn
from sqlalchemy.orm import Session

from app.auth import hash_key, new_key
from app.config import Settings
from app.db.database import Database
from app.db.engine import create_engine_for
from app.main import create_app
from app.models import ApiKey
from tests.waiting import wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Live:
    base_url: str
    key: str
    database: Database

    def client(self, *, auth: bool = True, timeout: float = 30) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key}"} if auth else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)


@contextmanager
def live_server(database_url: str, **settings: object) -> Iterator[Live]:
    config = Settings(database_url=database_url, **settings)  # type: ignore[arg-type]
    database = Database(create_engine_for(config))
    try:  # (the engine is disposed whatever fails: a leaked connection would warn in a later test)
        key, prefix = new_key()
        with Session(database.engine) as session:
            session.add(ApiKey(name=f"live-{prefix}", prefix=prefix, key_hash=hash_key(key), scope="admin"))
            session.commit()
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(config, database=database), host="127.0.0.1", port=port, log_level="warning"
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)

        def started() -> bool:
            if not thread.is_alive():
                raise RuntimeError("uvicorn stopped before it started")
            return server.started

        thread.start()
        try:
            wait_for(started, "uvicorn to start", timeout=20)
            yield Live(base_url=f"http://127.0.0.1:{port}", key=key, database=database)
        finally:
            server.should_exit = True
            thread.join(10)
    finally:
        database.dispose()


def hot_reads(c: httpx.Client) -> dict[str, float]:
    """The server's hot reads so far, by outcome (rendered, joined, cached, not_modified), from
    its `/metrics`."""
    out = {}
    for line in c.get("/metrics").text.splitlines():
        if line.startswith("undersigned_hot_reads_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            out[outcome] = float(line.rsplit(" ", 1)[1])
    return out
