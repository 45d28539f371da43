"""A real portal for kiosk tests, and a small HTTP server that misbehaves on cue.

A test module takes a fixture by naming it at module level:
`portal = portal_fixtures.portal` (an import would look unused to ruff).
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Portal:
    url: str
    token: str


@pytest.fixture
def portal(live_server, s3, station_token: str) -> Portal:
    """The real portal on 127.0.0.1 with an empty store and one station."""
    return Portal(live_server.url, station_token)


@dataclass(frozen=True)
class Reply:
    """One scripted answer; `drop` closes the connection without answering."""

    status: int = 200
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    drop: bool = False


DROP = Reply(drop=True)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class FaultServer:
    """Answers each request with the next scripted Reply; the last one repeats."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies) or [Reply(404, {"code": "not_found"})]
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((HOST, 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://{HOST}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,))

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def _next(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(
                    self.command, self.path, dict(self.headers), self.rfile.read(length)
                )
                reply = server._next(seen)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                payload = (
                    reply.raw
                    if reply.raw is not None
                    else json.dumps(reply.body).encode()
                )
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass  # the test asserts on `seen`, not on stderr

        return Handler


@pytest.fixture
def refused_url() -> str:
    """An address on 127.0.0.1 where nothing listens: connections are refused."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    return f"http://{HOST}:{port}"


def release_body(**changes: object) -> dict[str, object]:
    """A well-formed body of GET /api/flash-images/latest, with `changes`."""
    body: dict[str, object] = {
        "version": "v1.2.3",
        "release_date": "2026-11-30",
        "file_size": 1000,
        "checksum": "sha256:" + "ab" * 32,
        "description": "Line B fixes",
    }
    body.update(changes)
    return body
