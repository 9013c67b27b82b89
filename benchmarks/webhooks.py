"""Webhook delivery benchmark: events delivered per second, and the delay from a write's
commit to its delivery, through a real `undersigned serve` (its own delivery worker) posting
to a real local receiver.

    .venv/bin/python benchmarks/webhooks.py --backend sqlite --events 2000
    .venv/bin/python benchmarks/webhooks.py --backend postgresql \
        --pg-url postgresql://postgres@127.0.0.1:5432/undersigned_bench_webhooks

Two phases. Live: writers add signatures over HTTP (`--writers` at once) while the webhook
is on; the receiver notes when each event arrives; the delay of an event is its arrival time
minus the time its write was answered (the commit comes just before). Backlog: the webhook is
switched off, as many signatures again are written, the webhook is switched on, and the
events delivered per second are counted until the backlog is drained (the worker's own
pace, not the writers')."""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psycopg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Arrivals:
    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.lock = threading.Lock()


def receiver(arrivals: Arrivals) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            with arrivals.lock:
                arrivals.at.setdefault(f"{body['type']}:{body['data']['key']}", time.time())
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def wait(arrivals: Arrivals, count: int) -> None:
    deadline = time.monotonic() + 600
    while len(arrivals.at) < count and time.monotonic() < deadline:
        time.sleep(0.02)


def undersigned(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", "from app.cli import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/undersigned_bench_webhooks")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--writers", type=int, default=8)
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="bench-webhooks-")
    if args.backend == "postgresql":
        assert "bench" in args.pg_url and "127.0.0.1" in args.pg_url, "a loopback database named *bench*"
        name = args.pg_url.rsplit("/", 1)[1]
        with psycopg.connect(args.pg_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
        url = args.pg_url
    else:
        url = f"sqlite:///{folder}/bench.db"
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "warning", "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"}
    undersigned(env, "db", "upgrade")
    key = undersigned(env, "keys", "create", "--name", "bench", "--scope", "admin").strip().splitlines()[-1]
    arrivals = Arrivals()
    hook_server = receiver(arrivals)
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "-c", "from app.cli import main; main()", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as api:
            hook_url = f"http://127.0.0.1:{hook_server.server_address[1]}/hook"
            api.post(
                "/v1/webhooks", json={"url": hook_url, "events": ["signature.created"]}
            ).raise_for_status()
            api.post("/v1/letters", json={"slug": "bench", "title": "Bench"}).raise_for_status()
        answered: dict[str, float] = {}

        def write(n: int) -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=60) as api:
                for i in range(n, args.events, args.writers):
                    made = api.post(
                        "/v1/letters/bench/signatures",
                        json={"actor": {"kind": "organisation", "name": f"Org {i}"}},
                    )
                    made.raise_for_status()
                    answered[f"signature.created:bench/{made.json()['actor']['id']}"] = time.time()

        started = time.time()
        with ThreadPoolExecutor(args.writers) as pool:
            list(pool.map(write, range(args.writers)))
        wrote = time.time() - started
        wait(arrivals, args.events)
        delays = sorted(arrivals.at[k] - answered[k] for k in answered if k in arrivals.at)
        with httpx.Client(base_url=base, headers=headers, timeout=60) as api:
            api.patch("/v1/webhooks/1", json={"active": False}).raise_for_status()
            with ThreadPoolExecutor(args.writers) as pool:
                list(pool.map(write, range(args.writers)))
            resumed = time.time()
            api.patch("/v1/webhooks/1", json={"active": True}).raise_for_status()
        wait(arrivals, 2 * args.events)
        drained = max(arrivals.at.values()) - resumed
        result = {
            "backend": args.backend,
            "events": args.events,
            "delivered": len(arrivals.at),
            "live_writes_per_second": round(args.events / wrote, 1),
            "live_delay_ms_p50": round(statistics.median(delays) * 1000, 1),
            "live_delay_ms_p99": round(delays[int(len(delays) * 0.99) - 1] * 1000, 1),
            "live_delay_ms_max": round(delays[-1] * 1000, 1),
            "backlog_delivered_per_second": round(args.events / drained, 1),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
        print(json.dumps(result, indent=2))
    finally:
        serve.terminate()
        serve.wait(30)
        hook_server.shutdown()


if __name__ == "__main__":
    main()
