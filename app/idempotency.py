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
        thing = service.create_thing(writer, data)
        # a 201 with its Location, kept in the same transaction as the write (`answer` and
        # `store` for other answers)
        return idem.created(ThingOut.model_validate(thing), f"/v1/things/{thing.slug}")

Every POST route does (SPEC §3); an admin route takes `AdminIdempotencyKey`. The dependency
looks the key up once the writer is known: a retry is answered there, with the stored response
and `Idempotent-Replayed: true`, and the endpoint never runs (`Replayed` carries the answer out;
`replayed` is its handler, installed by the app).

Without the header nothing is looked up or stored. Only success answers are stored: an error
rolls the transaction back, so a retry is processed again. Two requests with one key at the
very same time: the second's insert meets the unique constraint and answers 409; a later retry
replays.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select

from app.auth import AdminAccess, WriteAccess, Writer
from app.errors import Invalid
from app.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_KEY_LENGTH = 300
_KEPT_HEADERS = ("content-type", "location")


class Replayed(Exception):
    """Raised by the idempotency dependency with the stored answer to a retry."""

    def __init__(self, response: Response) -> None:
        super().__init__("replayed")
        self.response = response


async def replayed(_request: Request, exc: Exception) -> Response:
    """The handler of `Replayed`: the stored answer, as it is."""
    assert isinstance(exc, Replayed)
    return exc.response


@dataclass(frozen=True)
class _Fingerprint:
    """The idempotency key of a request (None without the header) and its fingerprint."""

    key: str | None
    method: str
    path: str
    request_hash: str


@dataclass(frozen=True)
class Idempotency:
    """The idempotency key of a write with no stored answer yet: the endpoint's answer is kept
    for it (in the writer's transaction) by `created`, `answer` or `store`."""

    request: _Fingerprint
    writer: Writer

    def stored(self) -> Response | None:
        """The stored response of an earlier request with this key, or None (go ahead)."""
        request = self.request
        if request.key is None:
            return None
        record = self.writer.session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.key_name == self.writer.key_name,
                IdempotencyRecord.idempotency_key == request.key,
            )
        )
        if record is None:
            return None
        if (
            record.request_hash != request.request_hash
            or record.method != request.method
            or record.path != request.path
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

    def created(self, body: BaseModel, location: str) -> Response:
        """A 201 of `body` (as FastAPI would serialize it) at `location`, kept for this key."""
        return self.answer(body, status.HTTP_201_CREATED, headers={"Location": location})

    def answer(
        self, body: BaseModel, status_code: int = status.HTTP_200_OK, headers: dict[str, str] | None = None
    ) -> Response:
        """`body` (as FastAPI would serialize it) with `status_code`, kept for this key."""
        content = body.model_dump(mode="json", by_alias=True)
        return self.store(JSONResponse(content, status_code=status_code, headers=headers))

    def store(self, response: Response) -> Response:
        """Keep `response` as the answer to this key (in the write's transaction); returns it."""
        request = self.request
        if request.key is None:
            return response
        body = bytes(response.body).decode()
        kept = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
        self.writer.session.add(
            IdempotencyRecord(
                key_name=self.writer.key_name,
                idempotency_key=request.key,
                method=request.method,
                path=request.path,
                request_hash=request.request_hash,
                status_code=response.status_code,
                response_headers=kept,
                response_body=body,
            )
        )
        self.writer.session.flush()
        return response


def fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(f"{method} {path}\n".encode())
    digest.update(body)
    return digest.hexdigest()


async def _fingerprint(
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
) -> _Fingerprint:
    if key is not None:
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise Invalid(
                f"must be 1 to {MAX_KEY_LENGTH} printable characters", field="header.Idempotency-Key"
            )
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    body = await request.body() if key is not None else b""
    return _Fingerprint(key, request.method, path, fingerprint(request.method, path, body))


def _checked(writer: Writer, request: _Fingerprint) -> Idempotency:
    idempotency = Idempotency(request, writer)
    if (stored := idempotency.stored()) is not None:
        raise Replayed(stored)
    return idempotency


# The writer comes first: whoever has no key learns that before anything about the header. The
# writer dependency is the endpoint's own (FastAPI solves it once per request).
def _for_writer(writer: WriteAccess, request: Annotated[_Fingerprint, Depends(_fingerprint)]) -> Idempotency:
    return _checked(writer, request)


def _for_admin(writer: AdminAccess, request: Annotated[_Fingerprint, Depends(_fingerprint)]) -> Idempotency:
    return _checked(writer, request)


IdempotencyKey = Annotated[Idempotency, Depends(_for_writer)]
AdminIdempotencyKey = Annotated[Idempotency, Depends(_for_admin)]
