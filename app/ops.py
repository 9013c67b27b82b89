"""Operations endpoints: liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.db.database import get_database
from app.migrate import current_revision, head_revision

router = APIRouter(tags=["operations"])


@router.get("/healthz", operation_id="healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="readyz",
    summary="The database is reachable and its schema is at head",
    responses={503: {"description": "Not ready"}},
)
def readyz(request: Request) -> JSONResponse:
    engine = get_database(request).engine
    head = head_revision()
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current = current_revision(engine)
    except SQLAlchemyError as exc:
        return JSONResponse({"status": "unavailable", "detail": type(exc).__name__}, status_code=503)
    ready = current == head
    return JSONResponse(
        {"status": "ok" if ready else "migrations pending", "schema": current, "head": head},
        status_code=200 if ready else 503,
    )
