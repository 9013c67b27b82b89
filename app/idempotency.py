"""`Idempotency-Key` for POST routes (SPEC §3): a retry with the same key and the same request
returns the first response and writes nothing twice.

The first response is stored in `idempotency_records` in the same transaction as the write it
answers, so either both land or neither does. Records are per API key (`key_name`): two clients
cannot see each other's answers. The request is fingerprinted by a SHA-256 over the method, the
path with its query string, and the body; the same key with another fingerprint is a 422.

How a POST route adopts it::

    from app.idempotency import IdempotencyKey

    @router.post(..., status_code=201, response_model=ThingOut)
    def create_thing(data: ThingIn, writer: WriteAccess, idem: IdempotencyKey) -> Response:
        if (replay := idem.replay(writer)) is not None:
            return replay                       # the stored answer, `Idempotent-Replayed: true`
        thing = service.create_thing(writer, data)
        # a 201 with its Location, kept in the same transaction as the write (`store` for others)
        return idem.created(writer, ThingOut.model_validate(thing), f"/v1/things/{thing.slug}")

Every POST route does (SPEC §3).

Without the header both calls do nothing. Only success answers are stored: an error rolls the
transaction back, so a retry is processed again. Two requests with one key at the very same
time: the second's insert meets the unique constraint and answers 409; a later retry replays.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select

from app.auth import Writer
from app.errors import Invalid
from app.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_KEY_LENGTH = 300
_KEPT_HEADERS = ("content-type", "location")


@dataclass
class Idempotency:
    """The idempotency key of a request (None without the header) and its fingerprint."""

    key: str | None
    method: str
    path: str
    request_hash: str

    def replay(self, writer: Writer) -> Response | None:
        """The stored response of an earlier request with this key, or None (go ahead)."""
        if self.key is None:
            return None
        record = writer.session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.key_name == writer.key_name, IdempotencyRecord.idempotency_key == self.key
            )
        )
        if record is None:
            return None
        if (
            record.request_hash != self.request_hash
            or record.method != self.method
            or record.path != self.path
        ):
            raise Invalid(
                "this Idempotency-Key was used for a different request; use a new key for a new request",
                field="header.Idempotency-Key",
            )
        headers = dict(record.response_headers)
        headers[REPLAYED] = "true"
        media_type = headers.pop("content-type", None)
        return Response(
            content=record.response_body.encode(),
            status_code=record.status_code,
            headers=headers,
            media_type=media_type,
        )

    def created(self, writer: Writer, body: BaseModel, location: str) -> Response:
        """A 201 of `body` (as FastAPI would serialize it) at `location`, kept for this key."""
        content = body.model_dump(mode="json", by_alias=True)
        return self.store(writer, JSONResponse(content, status_code=201, headers={"Location": location}))

    def store(self, writer: Writer, response: Response) -> Response:
        """Keep `response` as the answer to this key (in the write's transaction); returns it."""
        if self.key is None:
            return response
        body = bytes(response.body).decode()
        kept = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
        writer.session.add(
            IdempotencyRecord(
                key_name=writer.key_name,
                idempotency_key=self.key,
                method=self.method,
                path=self.path,
                request_hash=self.request_hash,
                status_code=response.status_code,
                response_headers=kept,
                response_body=body,
            )
        )
        writer.session.flush()
        return response


def fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(f"{method} {path}\n".encode())
    digest.update(body)
    return digest.hexdigest()


async def _idempotency(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            description=(
                "Any unique string (a UUID): a retry with the same key and the same request answers "
                "the first response (`Idempotent-Replayed: true`) and writes nothing again."
            ),
        ),
    ] = None,
) -> Idempotency:
    if key is not None:
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise Invalid(
                f"must be 1 to {MAX_KEY_LENGTH} printable characters", field="header.Idempotency-Key"
            )
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    body = await request.body() if key is not None else b""
    return Idempotency(key, request.method, path, fingerprint(request.method, path, body))


IdempotencyKey = Annotated[Idempotency, Depends(_idempotency)]
