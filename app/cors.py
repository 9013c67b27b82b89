"""CORS: reads are open to every origin, and so are writes, which need a bearer key (not a
cookie), so a page elsewhere can only write with a key its user gave it. A preflight for a
method or header the rules do not allow is answered as a problem document, like every refusal.
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from app.errors import PROBLEM_JSON, problem_bytes

METHODS = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]
EXPOSED = [
    "ETag",
    "Link",
    "Location",
    "X-Request-ID",
    "Retry-After",
    "Idempotent-Replayed",
    "WWW-Authenticate",
    "Seats-On",
]


class ProblemCORSMiddleware(CORSMiddleware):
    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        headers = {
            k: v for k, v in response.headers.items() if k.lower() not in ("content-type", "content-length")
        }
        detail = bytes(response.body).decode() or "the preflight asks for what CORS does not allow here"
        body = json.loads(problem_bytes(response.status_code, detail))
        return Response(
            json.dumps(body), status_code=response.status_code, headers=headers, media_type=PROBLEM_JSON
        )
