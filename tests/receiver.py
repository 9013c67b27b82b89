"""A real webhook receiver for tests: an HTTP server on a free port that verifies each
delivery with the `standardwebhooks` library (the specification's own), answers 500 to its
first attempts if told to, can hang a request, and can be stopped and started again."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook as Verifier


class Receiver:
    def __init__(self, port: int, *, fail_first: int = 0) -> None:
        self.port = port
        self.secret = ""
        self.fail_first = fail_first
        self.attempts = 0
        self.hang_first = False
        self.hanging = threading.Event()
        self.release = threading.Event()
        self.accepted: list[dict[str, Any]] = []  # first successful delivery of each webhook-id
        self.ids: list[str] = []
        self.rejected: list[str] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.handle(self, body)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def handle(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        with self.lock:
            self.attempts += 1
            attempt = self.attempts
        if self.hang_first and attempt == 1:
            self.hanging.set()
            self.release.wait(30)
            return
        try:
            payload = Verifier(self.secret).verify(body, dict(request.headers.items()))
        except Exception as exc:
            self.rejected.append(repr(exc))
            self._answer(request, 400)
            return
        if attempt <= self.fail_first:
            self._answer(request, 500)
            return
        with self.lock:
            message_id = request.headers["webhook-id"]
            if message_id not in self.ids:  # receivers de-duplicate by webhook-id
                self.ids.append(message_id)
                self.accepted.append(payload)
        self._answer(request, 204)

    @staticmethod
    def _answer(request: BaseHTTPRequestHandler, status: int) -> None:
        request.send_response(status)
        request.send_header("content-length", "0")
        request.end_headers()

    def types(self) -> list[str]:
        return [json.loads(json.dumps(p))["type"] for p in self.accepted]
