"""API keys and the dependency that guards writes.

A key looks like `us_<prefix>_<secret>`. Only the SHA-256 of the whole key is stored (keys are
long random strings, so a fast hash is enough; there is nothing to brute-force); the prefix
finds the row and the hashes are compared in constant time. Scopes: `write` may create,
update, withdraw and import; `admin` adds hard deletes.

The key is read by FastAPI's `HTTPBearer` under `Security(..., scopes=[...])`, so the OpenAPI
document declares the scheme and each guarded operation's scope (`/docs` has an Authorize
button); `auto_error` is off because the refusals are ours: problem+json 401 with
`WWW-Authenticate`, 403 for a key of too small a scope.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.db.database import get_database, session_scope
from app.errors import Forbidden, Unauthorized
from app.models import ApiKey
from app.ratelimit import check_key_limit

Scope = Literal["write", "admin"]
SCOPES: tuple[Scope, ...] = ("write", "admin")
_SCOPE_RANK = {"write": 1, "admin": 2}
KEY_PREFIX = "us"
SCHEME_NAME = "BearerKey"
BEARER = HTTPBearer(
    scheme_name=SCHEME_NAME,
    bearerFormat="us_<prefix>_<secret>",
    description=(
        "An API key from `undersigned keys create`, sent as `Authorization: Bearer <key>`. "
        "Reads are public; writes need a key of scope `write`, hard deletes and webhooks `admin` "
        "(an `admin` key may do anything a `write` key may)."
    ),
    auto_error=False,
)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh key and its lookup prefix."""
    prefix = secrets.token_hex(6)
    return f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}", prefix


def find_key(session: Session, presented: str) -> ApiKey | None:
    parts = presented.split("_")
    if len(parts) < 3 or parts[0] != KEY_PREFIX:
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if key is None or not hmac.compare_digest(key.key_hash, hash_key(presented)):
        return None
    return key


@dataclass
class Writer:
    """A write in progress: the session (its transaction is the request's) and who writes."""

    session: Session
    key_name: str
    scope: Scope


def _authenticate(
    request: Request, session: Session, credentials: HTTPAuthorizationCredentials | None, needed: Scope
) -> Writer:
    if credentials is None:
        raise Unauthorized("writes need an API key: send 'Authorization: Bearer <key>'")
    key = find_key(session, credentials.credentials)
    if key is None:
        raise Unauthorized("the API key is not known")
    if key.revoked_at is not None:
        raise Unauthorized("the API key has been revoked")
    if _SCOPE_RANK.get(key.scope, 0) < _SCOPE_RANK[needed]:
        raise Forbidden(f"this key has scope '{key.scope}'; this request needs '{needed}'")
    request.state.key_name = key.name
    state = request.app.state
    check_key_limit(
        state.key_counter, key.name, key.rate_limit_per_minute or state.settings.rate_limit_per_key
    )
    return Writer(session=session, key_name=key.name, scope=key.scope)  # type: ignore[arg-type]


Credentials = HTTPAuthorizationCredentials | None


def _writer(
    request: Request, credentials: Annotated[Credentials, Security(BEARER, scopes=["write"])]
) -> Iterator[Writer]:
    with session_scope(get_database(request).write_sessions) as session:
        yield _authenticate(request, session, credentials, "write")


def _admin(
    request: Request, credentials: Annotated[Credentials, Security(BEARER, scopes=["admin"])]
) -> Iterator[Writer]:
    with session_scope(get_database(request).write_sessions) as session:
        yield _authenticate(request, session, credentials, "admin")


# Every write route takes one of these; a test walks the route table to make sure.
WriteAccess = Annotated[Writer, Depends(_writer, scope="function")]
AdminAccess = Annotated[Writer, Depends(_admin, scope="function")]


def _needed_scope(route: object) -> Scope | None:
    """The scope a route's key must have (its `WriteAccess` or `AdminAccess`), or None."""
    dependant = getattr(route, "dependant", None)
    calls = {d.call for d in getattr(dependant, "dependencies", [])}
    if _admin in calls:
        return "admin"
    if _writer in calls:
        return "write"
    return None


def _check_key(request: Request, credentials: Credentials, needed: Scope) -> None:
    with session_scope(get_database(request).read_sessions) as session:
        _authenticate(request, session, credentials, needed)


async def key_before_validation(request: Request) -> None:
    """Raise the 401 or 403 a write route would answer, for a request whose body or parameters
    failed before the route's key was checked (a body that is not JSON is refused before any
    dependency runs): whoever has no key learns that first, not what the route expects."""
    needed = _needed_scope(request.scope.get("route"))
    if needed is not None:
        await run_in_threadpool(_check_key, request, await BEARER(request), needed)


def document_scopes(schema: dict[str, Any]) -> None:
    """Say in each guarded operation of the OpenAPI document which scope its key needs, in an
    `x-required-scope` extension and in its description (Swagger UI and ReDoc show the
    description; the `security` requirement FastAPI wrote carries the same scope)."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            scopes = [
                s for requirement in operation.get("security", []) for s in requirement.get(SCHEME_NAME, [])
            ]
            if not scopes:
                continue
            needed = max(scopes, key=_SCOPE_RANK.__getitem__)
            operation["x-required-scope"] = needed
            note = f"Needs an API key of scope `{needed}` (`Authorization: Bearer <key>`)."
            operation["description"] = (
                f"{operation['description']}\n\n{note}" if operation.get("description") else note
            )
