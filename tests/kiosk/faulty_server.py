"""An HTTP file server on 127.0.0.1 that misbehaves on request.

It serves one image with ranges, ETag and If-Range like an S3 store, and
consumes one planned `Fault` per GET: a dropped connection, a stall, an error
status, a 200 to a range request, a wrong Content-Range or an expired link.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

BLOCK = 64 * 1024
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass
class Fault:
    """What to do to one request; `after` counts body bytes sent first."""

    kind: str  # drop | stall | status | ignore_range | wrong_range | expire
    after: int = 0
    status: int = 500
    retry_after: str | None = None


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it."""

    range: str | None
    if_range: str | None
    token: str


@dataclass
class Plan:
    faults: list[Fault] = field(default_factory=list)
    corrupt_at: int | None = None  # flip the byte at this offset in every answer
    ignore_ranges: bool = False  # answer every request with the whole file
    chunked: bool = False  # send whole-file answers with chunked encoding
    rate: float | None = None  # bytes/s per connection


class FaultyServer:
    """Use as `with FaultyServer(data) as server:`; `server.url()` is a fresh link."""

    def __init__(self, data: bytes, *, etag: str = '"v1"') -> None:
        self.data = data
        self.etag = etag
        self.plan = Plan()
        self.seen: list[Seen] = []
        self.token = 0
        self.expired = False
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self) -> str:
        """A new link; links handed out before it stop working."""
        with self._lock:
            self.token += 1
            self.expired = False
            return self.current_url()

    def current_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/image.img?token={self.token}"

    def fault(self, *faults: Fault) -> None:
        with self._lock:
            self.plan.faults.extend(faults)

    def next_fault(self) -> Fault | None:
        with self._lock:
            return self.plan.faults.pop(0) if self.plan.faults else None

    def valid(self, token: str) -> bool:
        with self._lock:
            return token == str(self.token) and not self.expired

    def expire(self) -> None:
        with self._lock:
            self.expired = True

    def track(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(sock)
            else:
                self._connections.discard(sock)

    def pause(self, seconds: float) -> None:
        self._closing.wait(seconds)

    def __enter__(self) -> FaultyServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._closing.set()
        self._httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        self._thread.join()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up mid-answer are what these tests are about."""


def _handler_for(server: FaultyServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        owner = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FaultyServer

    def setup(self) -> None:
        super().setup()
        self.owner.track(self.connection, add=True)

    def finish(self) -> None:
        self.owner.track(self.connection, add=False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read `seen`, not stderr."""

    def do_GET(self) -> None:
        try:
            self._answer()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def _answer(self) -> None:
        owner = self.owner
        token = parse_qs(urlsplit(self.path).query).get("token", [""])[0]
        owner.seen.append(
            Seen(self.headers.get("Range"), self.headers.get("If-Range"), token)
        )
        if not owner.valid(token):
            self._status(403, b"<Error><Code>AccessDenied</Code>Request has expired")
            return
        fault = owner.next_fault()
        if fault is not None and fault.kind == "status":
            self._status(fault.status, b"try later", fault.retry_after)
            return
        start, end, partial = self._range(fault)
        if start >= len(owner.data):
            self._status(416, b"", content_range=f"bytes */{len(owner.data)}")
            return
        chunked = owner.plan.chunked and not partial
        self.send_response(206 if partial else 200)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(end - start))
        self.send_header("ETag", owner.etag)
        self.send_header("Last-Modified", "Mon, 01 Dec 2026 10:00:00 GMT")
        if partial:
            shown = start + 1 if fault and fault.kind == "wrong_range" else start
            length = len(owner.data)
            self.send_header("Content-Range", f"bytes {shown}-{end - 1}/{length}")
        self.end_headers()
        self._body(start, end, fault, chunked)

    def _range(self, fault: Fault | None) -> tuple[int, int, bool]:
        owner = self.owner
        size = len(owner.data)
        match = _RANGE.fullmatch(self.headers.get("Range", ""))
        if_range = self.headers.get("If-Range")
        ignore = owner.plan.ignore_ranges or (fault and fault.kind == "ignore_range")
        if match is None or ignore or (if_range and if_range != owner.etag):
            return 0, size, False
        start = int(match[1])
        end = min(int(match[2]) + 1, size) if match[2] else size
        return start, end, True

    def _body(self, start: int, end: int, fault: Fault | None, chunked: bool) -> None:
        owner = self.owner
        cut = None
        if fault is not None and fault.kind in ("drop", "stall", "expire"):
            cut = start + fault.after
        offset = start
        began = time.monotonic()
        while offset < end:
            if cut is not None and offset >= cut:
                self._misbehave(fault)
                return
            stop = min(end, offset + BLOCK, cut if cut is not None else end)
            piece = self._bytes(offset, stop)
            if chunked:
                piece = b"%x\r\n%s\r\n" % (len(piece), piece)
            self.wfile.write(piece)
            offset = stop
            rate = owner.plan.rate
            if rate:
                owner.pause(began + (offset - start) / rate - time.monotonic())
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _bytes(self, start: int, stop: int) -> bytes:
        piece = self.owner.data[start:stop]
        at = self.owner.plan.corrupt_at
        if at is not None and start <= at < stop:
            flipped = bytearray(piece)
            flipped[at - start] ^= 0xFF
            return bytes(flipped)
        return piece

    def _misbehave(self, fault: Fault | None) -> None:
        assert fault is not None
        if fault.kind == "stall":
            self.wfile.flush()
            self.owner.pause(30)
        if fault.kind == "expire":
            self.owner.expire()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def _status(
        self,
        status: int,
        body: bytes,
        retry_after: str | None = None,
        content_range: str | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        if content_range is not None:
            self.send_header("Content-Range", content_range)
        self.end_headers()
        self.wfile.write(body)
