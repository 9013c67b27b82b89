"""Schemathesis over the whole OpenAPI document, with a write key: positive and negative data
for every operation. No answer may be a server error or break the documented schema (status
codes, content types, response bodies and headers). `FUZZ_EXAMPLES` sets the examples per
operation (CI keeps it small; a long run is `FUZZ_EXAMPLES=500 ./dev test tests/test_fuzz.py`).

The schema is read from an app built without a database (the document does not depend on
one); each generated request goes through the per-test app, on the session's database."""

from __future__ import annotations

import base64
import encodings.aliases
import json
import os
import string
from datetime import date
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import CoveragePhaseData, CoverageScenario
from sqlalchemy.orm import Session

from app.config import Settings
from app.main import create_app
from tests import builders as b

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))

schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(Settings(database_url="sqlite://", webhook_worker=False))
)
schema.config.generation.update(modes=list(GenerationMode), max_examples=EXAMPLES, database="none")
# The SSE stream never ends by design; it has its own tests against a real server.
schema = schema.exclude(path_regex=r"/stream$")  # type: ignore[assignment]


@schema.parametrize()
# One client (and one database, emptied after the test) serves every example of an operation: on
# purpose.
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
        request = client.build_request(**kwargs)
        if _without_authorization(case):
            # A case that leaves the key out on purpose: the client's own key must not come back
            # in, or the check that expects a 401 would see the key's answer instead.
            del request.headers["authorization"]
        response = client.send(request)
    except httpx.InvalidURL:
        # Negative data can make a query string past what the HTTP client will build (65,536
        # characters); such a request never reaches the server, so there is nothing to check.
        reject()
    # Not checked: that every schema-valid request is accepted. The schema cannot say that a
    # cursor must be one we issued, or that a slug or id must exist, so those are rightly 4xx.
    case.validate_response(response, excluded_checks=[positive_data_acceptance])


def _without_authorization(case: schemathesis.Case[Any]) -> bool:
    """Whether the case leaves the key out: the coverage phase's missing `Authorization`, or any
    case whose headers are the invalid part (the declared scheme makes `Authorization` one of
    them; a case never carries the key itself, the client adds it)."""
    if case.meta is None or any(name.lower() == "authorization" for name in case.headers or {}):
        return False
    data = case.meta.phase.data
    if isinstance(data, CoveragePhaseData) and data.scenario == CoverageScenario.MISSING_PARAMETER:
        return (data.parameter or "").lower() == "authorization"
    return case.meta.is_negative_at(ParameterLocation.HEADER)


# --- fuzzers of our own: cursors and charsets -------------------------------------------------


@pytest.fixture
def fuzz_letter(db: Session) -> None:
    """A letter with a signature, an event and a recipient: every list below has rows to page."""
    letter = b.letter(db, "fuzz")
    b.sign(db, letter, b.actor(db, "Fuzzed"))
    b.event(db, date(2020, 9, 10), "other", on=letter)


KEYSET_LISTS = [
    "/v1/letters",
    "/v1/actors",
    "/v1/campaigns",
    "/v1/bodies",
    "/v1/letters/fuzz/signatures",
    "/v1/letters/fuzz/events",
    "/v1/letters/fuzz/recipients",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=8,
)
cursor_texts = st.one_of(
    json_values.map(lambda v: json.dumps(v, allow_nan=True)),
    st.lists(st.one_of(json_values, st.fixed_dictionaries({"d": st.text(max_size=12)})), max_size=3).map(
        json.dumps
    ),
    st.text(max_size=60),
)


@given(raw=cursor_texts, path=st.sampled_from(KEYSET_LISTS), encode=st.booleans())
@settings(
    max_examples=EXAMPLES * 10,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    deadline=None,
    database=None,
)
def test_cursor_fuzz_never_a_server_error(
    anon: TestClient, fuzz_letter: None, raw: str, path: str, encode: bool
) -> None:
    value = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=") if encode else raw
    response = anon.get(path, params={"cursor": value, "limit": 2})
    assert response.status_code in (200, 422), (path, raw, response.text)
    if response.status_code != 200:
        assert response.headers["content-type"].startswith("application/problem+json")


charsets = st.one_of(
    st.sampled_from(sorted(set(encodings.aliases.aliases) | set(encodings.aliases.aliases.values()))),
    st.sampled_from(["utf-7", "rot13", "base64", "zlib", "hex", "bz2", "uu", "idna", "punycode", "mbcs"]),
    st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=20),
)


@given(charset=charsets, csv_body=st.booleans(), data=st.binary(max_size=40))
@settings(
    max_examples=EXAMPLES * 10,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    deadline=None,
    database=None,
)
def test_charset_fuzz_never_a_server_error(
    client: TestClient, fuzz_letter: None, charset: str, csv_body: bool, data: bytes
) -> None:
    kind = "text/csv" if csv_body else "application/json"
    body = (b"name\nA\n" if csv_body else b'[{"name": "A"}]') + data
    response = client.post(
        "/v1/letters/fuzz/signatures/import",
        params={"dry_run": "true"},
        content=body,
        headers={"Content-Type": f"{kind}; charset={charset}"},
    )
    assert response.status_code in (200, 415, 422), (charset, response.text)
    assert response.headers["content-type"].startswith(("application/json", "application/problem+json"))
