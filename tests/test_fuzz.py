"""Schemathesis over the whole OpenAPI document, with a write key: positive and negative data
for every operation. No answer may be a server error or break the documented schema (status
codes, content types, response bodies and headers). `FUZZ_EXAMPLES` sets the examples per
operation (CI keeps it small; a long run is `FUZZ_EXAMPLES=500 ./dev test tests/test_fuzz.py`).

The schema is read from an app built without a database (the document does not depend on
one); each generated request goes through the per-test app, inside the test's transaction."""

from __future__ import annotations

import os
from typing import Any

import httpx
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, reject, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from app.config import Settings
from app.main import create_app

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))

schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(Settings(database_url="sqlite://", webhook_worker=False))
)
schema.config.generation.update(modes=list(GenerationMode), max_examples=EXAMPLES, database="none")
# The SSE stream never ends by design; it has its own tests against a real server.
schema = schema.exclude(path_regex=r"/stream$")  # type: ignore[assignment]


@schema.parametrize()
# One client (and one rolled-back transaction) serves every example of an operation: on purpose.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
def test_no_server_error_and_responses_match_the_schema(
    case: schemathesis.Case[Any], client: TestClient
) -> None:
    kwargs: dict[str, Any] = case.as_transport_kwargs(base_url=str(client.base_url))
    kwargs.pop("base_url", None)
    client.cookies.clear()
    client.cookies.update(kwargs.pop("cookies", None) or {})
    if isinstance(kwargs.get("data"), bytes | str):
        kwargs["content"] = kwargs.pop("data")
    try:
        response = client.request(**kwargs)
    except httpx.InvalidURL:
        # Negative data can make a query string past what the HTTP client will build (65,536
        # characters); such a request never reaches the server, so there is nothing to check.
        reject()
    # Not checked: that every schema-valid request is accepted. The schema cannot say that a
    # cursor must be one we issued, or that a slug or id must exist, so those are rightly 4xx.
    case.validate_response(response, excluded_checks=[positive_data_acceptance])
