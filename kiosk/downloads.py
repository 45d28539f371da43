"""Resumable, verified downloads of release images into the staging folder.

The body of a multi-gigabyte image must arrive at the speed SHA-256 allows on
one core, survive a killed process, and never reach `recommended/` unverified.
Why it is built the way it is:

- Bodies are read with `http.client` (`readinto1` under the response)
  straight into a fixed pool of 4 MiB page-aligned buffers. Fresh `bytes` per
  read, as higher-level clients hand them out, cost about half the throughput
  on a station, and the pool bounds memory whatever the image size.
- Several connections fetch fixed-size chunks with ranged GETs, taking them in
  file order, so the chunks in flight stay close together. Each filled buffer
  is written in place with O_DIRECT: buffered writes cost about three times
  the CPU of the hash itself here, and the page cache gains nothing from an
  image that is read again only when a drive is flashed.
- One hashing thread follows the contiguous prefix and hashes the buffers as
  they land, in file order, so the SHA-256 is known when the last byte
  arrives: there is no second pass. Connections running ahead wait for a
  buffer rather than starve the one the hash waits for; only if every buffer
  holds later bytes is the farthest given back, its bytes read from disk in
  their turn. After a restart the same thread re-hashes the prefix on disk.
- The whole size is reserved with `posix_fallocate` first: a full disk fails
  at once instead of after gigabytes, and later writes cannot run out of room.
- A syncing thread `fdatasync`s the file every `sync_interval` and only then
  writes the resume state (temporary file, fsync, rename), so the state never
  claims bytes that a crash could have lost.
- A cancel removes the partial file; a stop (the station shutting down) makes
  one last checkpoint and keeps it, so up to 24 GiB are not fetched again.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import http.client
import json
import logging
import mmap
import os
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kiosk.errors import (
    CorruptedDownload,
    DownloadCancelled,
    DownloadError,
    DownloadStopped,
    KioskError,
    PortalOffline,
    StorageError,
)

__all__ = ["Downloader", "Progress"]

log = logging.getLogger(__name__)

MiB = 1 << 20
BUFFER_SIZE = 4 * MiB
CHUNK_SIZE = 32 * MiB  # fewer, longer requests cost the store less CPU
MIN_CHUNK_SIZE = 64 * 1024
MAX_BUFFERS = 16  # 64 MiB; the pool never grows past it
RESERVED_BUFFERS = 2
ALIGN = 4096  # O_DIRECT offsets, lengths and addresses are multiples of this
PROGRESS_INTERVAL = 0.1  # at most ten progress events a second
MAX_RETRY_AFTER = 300.0
MAX_RENEWALS = 3  # new URLs in a row that the store still refuses
MAX_RESTARTS = 3  # times the store may force a fresh start in one call
STATE_VERSION = 1

# Failures after which the partial file is worthless or unwanted.
_DISCARDING = (DownloadCancelled, CorruptedDownload, StorageError)
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Progress:
    done: int  # bytes verified-or-written so far
    total: int
    speed: float  # bytes/s, smoothed
    eta: float | None  # seconds, None when unknown
    resumed_from: int  # offset this attempt started at (0 for fresh)


class _Stopped(Exception):
    """The transfer is stopping; a worker leaves quietly."""


class _Halted(Exception):
    """The station is stopping; the partial file and its state are kept."""


class _Transient(Exception):
    """A failure worth retrying after a pause."""

    def __init__(
        self, reason: str, retry_after: float | None = None, *, garbled: bool = False
    ) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.garbled = garbled  # the store answered, but not what was asked


class _Expired(Exception):
    """The store refused the presigned URL (403); a new one is needed."""


class _StartOver(Exception):
    """The store ignored or invalidated the range; bytes on disk are unusable."""


@dataclass
class _State:
    """What survives a restart: the layout and the bytes known to be on disk."""

    size: int
    sha256: str
    chunk_size: int
    written: list[int]
    validator: str | None = None

    @classmethod
    def fresh(cls, size: int, sha256: str, chunk_size: int) -> _State:
        return cls(size, sha256, chunk_size, [0] * -(-size // chunk_size))

    def span(self, index: int) -> tuple[int, int]:
        start = index * self.chunk_size
        return start, min(start + self.chunk_size, self.size)

    def done(self) -> int:
        return sum(self.written)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "size": self.size,
            "sha256": self.sha256,
            "chunk_size": self.chunk_size,
            "validator": self.validator,
            "written": self.written,
        }

    @classmethod
    def from_json(cls, raw: Any) -> _State | None:
        """The state in `raw`, or None when it is not one this code wrote."""
        try:
            state = cls(
                raw["size"],
                raw["sha256"],
                raw["chunk_size"],
                list(raw["written"]),
                raw["validator"],
            )
            valid = raw["version"] == STATE_VERSION and state._consistent()
        except (KeyError, TypeError, ValueError):
            return None
        return state if valid else None

    def _consistent(self) -> bool:
        if self.chunk_size <= 0 or self.size <= 0:
            return False
        if len(self.written) != -(-self.size // self.chunk_size):
            return False
        return all(
            isinstance(n, int) and 0 <= n <= end - start
            for n, (start, end) in zip(
                self.written, map(self.span, range(len(self.written))), strict=True
            )
        )


@dataclass(frozen=True)
class _Files:
    part: Path
    state: Path
    complete: Path

    @classmethod
    def of(cls, staging_dir: Path, name: str) -> _Files:
        return cls(
            staging_dir / f"{name}.part",
            staging_dir / f"{name}.resume.json",
            staging_dir / name,
        )

    @property
    def state_draft(self) -> Path:
        """Where the next state is written before it replaces the current one."""
        return _draft_of(self.state)

    def remove(self) -> None:
        self.remove_state()
        with contextlib.suppress(FileNotFoundError):
            self.part.unlink()

    def remove_state(self) -> None:
        for path in (self.state, self.state_draft):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


class _Link:
    """The current presigned URL; asks for a new one once per expiry."""

    def __init__(self, source: Callable[[], str]) -> None:
        self._source = source
        self._lock = threading.Lock()
        self.generation = 0
        self.url = source()

    def current(self) -> tuple[int, str]:
        with self._lock:
            return self.generation, self.url

    def renew(self, generation: int) -> None:
        with self._lock:
            if generation == self.generation:
                self.url = self._source()
                self.generation += 1


class _Connection:
    """One keep-alive connection to the store, reopened after any failure."""

    def __init__(
        self, timeout: float, register: Callable[[socket.socket, bool], None]
    ) -> None:
        self._timeout = timeout
        self._register = register
        self._conn: http.client.HTTPConnection | None = None
        self._origin = ("", "")

    def get(self, url: str, headers: dict[str, str]) -> http.client.HTTPResponse:
        parts = urlsplit(url)
        if self._conn is None or self._origin != (parts.scheme, parts.netloc):
            self.close()
            self._conn = self._open(parts.scheme, parts.netloc)
            self._origin = (parts.scheme, parts.netloc)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._conn.request("GET", target, headers=headers)
        return self._conn.getresponse()

    def _open(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        if scheme == "https":
            context = ssl.create_default_context()
            conn = http.client.HTTPSConnection(
                netloc, timeout=self._timeout, context=context
            )
        elif scheme == "http":
            conn = http.client.HTTPConnection(netloc, timeout=self._timeout)
        else:
            raise DownloadError(
                f"The download link uses '{scheme}', which the station cannot "
                "fetch. Ask the portal administrator to check the store's address."
            )
        conn.connect()
        assert conn.sock is not None
        self._register(conn.sock, True)
        return conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            if conn.sock is not None:
                self._register(conn.sock, False)
            conn.close()


@dataclass(frozen=True)
class _Watch:
    """What one download call answers to: its deadline, listener and events."""

    deadline: float
    progress: Callable[[Progress], None] | None
    cancel: threading.Event | None
    stop: threading.Event | None

    def stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def check(self, name: str) -> None:
        """Raise when someone cancelled the download or the station is stopping."""
        if self.cancel is not None and self.cancel.is_set():
            raise DownloadCancelled(
                f"The download of {name} was cancelled; its partial file was removed."
            )
        if self.stopping():
            raise _Halted


@dataclass(frozen=True)
class _Tuning:
    segments: int
    stall_timeout: float
    max_retries: int
    backoff: float
    backoff_cap: float
    sync_interval: float
    pause: Callable[[float], None] | None


@dataclass(frozen=True)
class _Fds:
    """The partial file, opened for O_DIRECT (when the folder allows) and not."""

    buffered: int
    direct: int | None


@dataclass(frozen=True)
class _Landed:
    """A buffer whose bytes are on disk and wait for the hash."""

    offset: int
    count: int
    view: memoryview


class _Transfer:
    """One pass of worker, hashing and syncing threads over one staged file."""

    def __init__(
        self,
        name: str,
        files: _Files,
        fds: _Fds,
        state: _State,
        link: _Link,
        tuning: _Tuning,
    ) -> None:
        self.name = name
        self.files = files
        self.state = state
        self.resumed_from = state.done()
        self._fds = fds
        self._link = link
        self._tuning = tuning
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._probed = threading.Event()
        if state.validator is not None:
            self._probed.set()
        self._error: BaseException | None = None
        self._pending = [
            i for i, n in enumerate(state.written) if n < _length(state.span(i))
        ]
        # Until the first answer names the object's version, only one asks.
        self._prober = self._pending[0] if self._pending else None
        self._sockets: set[socket.socket] = set()
        self._digest = hashlib.sha256()
        self._hashed = 0
        self._prefix_chunk = 0
        self._landed: list[_Landed] = []  # written buffers the hash has not used
        self.read_back = 0  # bytes the hash had to read from disk
        per_worker = -(-state.chunk_size // BUFFER_SIZE)
        count = min(MAX_BUFFERS, tuning.segments * per_worker + RESERVED_BUFFERS)
        # mmap memory is page-aligned, as O_DIRECT wants; untouched pages cost
        # no memory, so small chunks in a large buffer are free.
        self._free = [memoryview(mmap.mmap(-1, BUFFER_SIZE)) for _ in range(count)]
        self.done = self.resumed_from

    # The supervising side, on the thread that called download().

    def run(self, watch: _Watch) -> str:
        """Fetch, hash and sync until the file is whole; the hex SHA-256."""
        workers = [
            threading.Thread(target=self._work, name=f"download-{i}", daemon=True)
            for i in range(min(self._tuning.segments, len(self._pending)))
        ]
        support = [
            threading.Thread(target=self._hash, name="download-hash", daemon=True),
            threading.Thread(target=self._sync, name="download-sync", daemon=True),
        ]
        for thread in (*workers, *support):
            thread.start()
        meter = _Meter(self.state.size, self.resumed_from, watch.progress)
        try:
            self._supervise(watch, meter)
        finally:
            self._halt(workers + support)
        meter.finish()
        return self._digest.hexdigest()

    def _supervise(self, watch: _Watch, meter: _Meter) -> None:
        while True:
            self._wake.wait(PROGRESS_INTERVAL)
            if self._error is not None:
                raise self._error
            watch.check(self.name)
            if time.monotonic() > watch.deadline:
                raise DownloadError(
                    f"The download of {self.name} did not finish in time. "
                    "Try again; it continues where it stopped."
                )
            with self._cond:
                done, hashed = self.done, self._hashed
            if hashed >= self.state.size:
                return
            meter.update(done)

    def _halt(self, threads: list[threading.Thread]) -> None:
        self._stop.set()
        self._probed.set()
        with self._cond:
            self._cond.notify_all()
            sockets = list(self._sockets)
        for sock in sockets:
            # Wakes a worker blocked in recv at once, whatever its timeout.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join()

    def checkpoint(self) -> None:
        """Make the written bytes durable, then record them as such."""
        with self._cond:
            snapshot = _State(**{**vars(self.state), "written": [*self.state.written]})
        try:
            os.fdatasync(self._fds.buffered)
            _save_state(self.files.state, snapshot)
        except OSError as exc:
            raise _storage_error(exc, self.files.part, self.state.size) from exc

    def _fail(self, exc: BaseException) -> None:
        with self._cond:
            if self._error is None:
                self._error = exc
        self._stop.set()
        self._probed.set()
        self._wake.set()

    # The worker threads.

    def _work(self) -> None:
        conn = _Connection(self._tuning.stall_timeout, self._track)
        try:
            while (index := self._take()) is not None:
                self._fetch(index, conn)
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the supervisor
            self._fail(exc)
        finally:
            conn.close()

    def _track(self, sock: socket.socket, live: bool) -> None:
        with self._cond:
            if not live:
                self._sockets.discard(sock)
                return
            if self._stop.is_set():
                sock.close()
                raise _Stopped
            self._sockets.add(sock)

    def _take(self) -> int | None:
        with self._cond:
            if self._stop.is_set() or not self._pending:
                return None
            return self._pending.pop(0)

    def _resume_point(self, index: int) -> tuple[int, int]:
        """Where to ask from: aligned, so that O_DIRECT can write what comes."""
        start, end = self.state.span(index)
        with self._cond:
            written = self.state.written[index]
        if start + written >= end:
            return end, end
        return start + written - written % ALIGN, end

    def _fetch(self, index: int, conn: _Connection) -> None:
        failures = renewals = 0
        while True:
            start, end = self._resume_point(index)
            if start >= end:
                return
            generation, url = self._link.current()
            try:
                self._get(conn, url, index, (start, end))
            except _Expired:
                conn.close()
                renewals = 1 if self._resume_point(index)[0] > start else renewals + 1
                if renewals > MAX_RENEWALS:
                    raise DownloadError(
                        f"The store refused the download link for {self.name} "
                        "even after a new one. Check the station's clock, "
                        "then try again."
                    ) from None
                log.warning(
                    "download of %s: link refused, asking for a new one", self.name
                )
                self._link.renew(generation)
            except _Transient as exc:
                conn.close()
                failures = 1 if self._resume_point(index)[0] > start else failures + 1
                self._back_off(failures, exc)

    def _back_off(self, failures: int, exc: _Transient) -> None:
        if self._stop.is_set():
            raise _Stopped  # the halt closed the connection; nothing to retry
        tuning = self._tuning
        if failures > tuning.max_retries and exc.garbled:
            raise DownloadError(
                f"The store kept sending the wrong part of {self.name}. Try "
                "again later; if it repeats, report the store's address."
            ) from exc
        if failures > tuning.max_retries:
            raise PortalOffline(
                f"Could not reach the file store for {self.name} after "
                f"{tuning.max_retries} retries. Check the station's network, then "
                "try again; the download continues where it stopped."
            ) from exc
        if exc.retry_after is not None:
            delay = exc.retry_after
        else:
            ceiling = min(tuning.backoff_cap, tuning.backoff * 2 ** (failures - 1))
            delay = ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311
        log.warning(
            "download of %s: %s; retry %s of %s in %.2f s",
            self.name,
            exc,
            failures,
            tuning.max_retries,
            delay,
        )
        if tuning.pause is not None:
            tuning.pause(delay)
        elif self._stop.wait(delay):
            raise _Stopped
        if self._stop.is_set():
            raise _Stopped

    def _get(
        self,
        conn: _Connection,
        url: str,
        index: int,
        span: tuple[int, int],
    ) -> None:
        start, end = span
        headers = {"Range": f"bytes={start}-{end - 1}"}
        if not self._probed.is_set() and index != self._prober:
            self._probed.wait()
        if self.state.validator is not None:
            headers["If-Range"] = self.state.validator
        if self._stop.is_set():
            raise _Stopped
        log.debug("download of %s: GET bytes %s-%s", self.name, start, end - 1)
        try:
            response = conn.get(url, headers)
            self._check(response, start, end)
            self._receive(response, index, start, end)
        except (OSError, http.client.HTTPException) as exc:
            if self._stop.is_set():
                raise _Stopped from exc
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc

    def _check(self, response: http.client.HTTPResponse, start: int, end: int) -> None:
        status = response.status
        if status in (200, 206):
            self._accept(response, start, end)
            return
        if status == 403:
            raise _Expired
        if status == 429 or status >= 500:
            raise _Transient(f"HTTP {status}", _retry_after(response))
        if status == 416:
            raise CorruptedDownload(
                f"Corrupted download of {self.name}: the store's file is smaller "
                "than the release says; nothing was kept. Report the release."
            )
        raise DownloadError(
            f"The store refused the download of {self.name} (HTTP {status}). "
            "Ask the portal administrator to check the release."
        )

    def _accept(self, response: http.client.HTTPResponse, start: int, end: int) -> None:
        validator = _validator(response)
        size = self.state.size
        if response.status == 200:
            if (start, end) != (0, size):
                raise _StartOver("the store answered a range request with 200")
            if response.length is not None and response.length != size:
                raise self._size_mismatch(response.length)
        else:
            match = _CONTENT_RANGE.fullmatch(response.getheader("Content-Range", ""))
            if match is None or (int(match[1]), int(match[2])) != (start, end - 1):
                raise _Transient(
                    f"wrong Content-Range {response.getheader('Content-Range')!r} "
                    f"for bytes {start}-{end - 1}",
                    garbled=True,
                )
            if match[3] != "*" and int(match[3]) != size:
                raise self._size_mismatch(int(match[3]))
            known = self.state.validator
            if known is not None and validator is not None and validator != known:
                raise _StartOver("the file on the store changed")
        with self._cond:
            if self.state.validator is None or response.status == 200:
                self.state.validator = validator
        self._probed.set()

    def _size_mismatch(self, found: int) -> CorruptedDownload:
        log.error(
            "download of %s: store has %s bytes, release says %s",
            self.name,
            found,
            self.state.size,
        )
        return CorruptedDownload(
            f"Corrupted download of {self.name}: the store's file has another "
            "size than the release; nothing was kept. Report the release."
        )

    def _receive(
        self, response: http.client.HTTPResponse, index: int, start: int, end: int
    ) -> None:
        # Read below HTTPResponse, so a buffer filled in many recv calls keeps
        # what arrived before a drop or stall and the retry starts after it.
        # Only a chunked body (never a range) needs HTTPResponse to unwrap it.
        read = response.readinto if response.chunked else response.fp.readinto1
        offset = start
        while offset < end:
            view = self._acquire(offset)
            want = min(len(view), end - offset)
            filled = 0
            try:
                while filled < want:
                    count = read(view[filled:want])
                    if count == 0:
                        raise _Transient(f"connection closed at byte {offset + filled}")
                    filled += count
            finally:
                self._land(index, view, offset, filled)
            offset += filled
        response.close()  # the body is read; the connection can serve the next

    def _acquire(self, offset: int) -> memoryview:
        """A free buffer for the bytes at `offset`, once the hash frees one."""
        with self._cond:
            while True:
                if self._stop.is_set():
                    raise _Stopped
                needed = offset <= self._prefix_end()  # the hash waits for these
                # The last free buffers are kept for the bytes the hash needs,
                # so connections running ahead cannot starve it.
                if len(self._free) > (0 if needed else RESERVED_BUFFERS):
                    return self._free.pop()
                if needed and self._landed:
                    # Every buffer holds later bytes: give back the farthest;
                    # its bytes are on disk and are read back in their turn.
                    farthest = max(self._landed, key=lambda landed: landed.offset)
                    self._landed.remove(farthest)
                    return farthest.view
                self._cond.wait(1.0)

    def _land(self, index: int, view: memoryview, offset: int, count: int) -> None:
        """Write a filled buffer in place and hand it to the hash."""
        try:
            if count:
                self._write(view[:count], offset)
        except BaseException:
            self._release(view)
            raise
        start = self.state.span(index)[0]
        with self._cond:
            if not count:
                self._free.append(view)
                return
            written = self.state.written[index]
            # A retry asks from an aligned offset and may repeat a few bytes.
            grown = max(0, offset + count - start - written)
            self.state.written[index] = written + grown
            self.done += grown
            self._landed.append(_Landed(offset, count, view))
            self._cond.notify_all()

    def _release(self, view: memoryview) -> None:
        with self._cond:
            self._free.append(view)
            self._cond.notify_all()

    def _write(self, data: memoryview, offset: int) -> None:
        fds = self._fds
        while data:
            # Whole blocks go direct; the tail at the end of the file or of a
            # broken answer goes through the page cache.
            blocks = len(data) - len(data) % ALIGN
            if fds.direct is not None and offset % ALIGN == 0 and blocks:
                fd, length = fds.direct, blocks
            else:
                fd, length = fds.buffered, len(data)
            try:
                count = os.pwrite(fd, data[:length], offset)
            except OSError as exc:
                raise _storage_error(exc, self.files.part, self.state.size) from exc
            data, offset = data[count:], offset + count

    # The hashing and syncing threads.

    def _hash(self) -> None:
        own = memoryview(mmap.mmap(-1, BUFFER_SIZE))
        try:
            while self._hashed < self.state.size:
                found = self._await_bytes()
                if found is None:
                    return
                if isinstance(found, _Landed):
                    skip = self._hashed - found.offset
                    self._digest.update(found.view[skip : found.count])
                    self._advance_hash(found.count - skip, found.view)
                else:
                    count = self._read_back(own, found)
                    self.read_back += count
                    self._digest.update(own[:count])
                    self._advance_hash(count, None)
        except BaseException as exc:  # handed to the supervisor
            self._fail(exc)
        finally:
            self._wake.set()

    def _await_bytes(self) -> _Landed | int | None:
        """The landed buffer at the hash, else the end of the prefix on disk."""
        with self._cond:
            while not self._stop.is_set():
                for landed in list(self._landed):
                    if landed.offset + landed.count <= self._hashed:
                        self._landed.remove(landed)
                        self._free.append(landed.view)
                        self._cond.notify_all()
                    elif landed.offset <= self._hashed:
                        self._landed.remove(landed)
                        return landed
                end = self._prefix_end()
                if end > self._hashed:
                    return end
                self._cond.wait(1.0)
        return None

    def _advance_hash(self, count: int, view: memoryview | None) -> None:
        with self._cond:
            self._hashed += count
            if view is not None:
                self._free.append(view)
                self._cond.notify_all()

    def _read_back(self, own: memoryview, end: int) -> int:
        """Read bytes that landed before this run or were given back."""
        offset = self._hashed
        want = min(len(own), end - offset)
        fds = self._fds
        if fds.direct is not None and offset % ALIGN == 0:
            # Rounded up to whole blocks; only the first `want` bytes count.
            length = -(-want // ALIGN) * ALIGN
            count = min(want, os.preadv(fds.direct, [own[:length]], offset))
        else:
            count = os.preadv(fds.buffered, [own[:want]], offset)
        if count <= 0:
            raise CorruptedDownload(
                f"Corrupted download of {self.name}: the partial file "
                "became shorter; nothing was kept. Download it again."
            )
        return count

    def _prefix_end(self) -> int:
        state = self.state
        while self._prefix_chunk < len(state.written):
            start, end = state.span(self._prefix_chunk)
            if start + state.written[self._prefix_chunk] < end:
                return start + state.written[self._prefix_chunk]
            self._prefix_chunk += 1
        return state.size

    def _sync(self) -> None:
        try:
            while not self._stop.wait(self._tuning.sync_interval):
                self.checkpoint()
        except BaseException as exc:  # handed to the supervisor
            self._fail(exc)


class _Meter:
    """Smoothed speed and throttled progress events."""

    def __init__(
        self, total: int, start: int, callback: Callable[[Progress], None] | None
    ) -> None:
        self._total = total
        self._start = start
        self._callback = callback
        self._last_time = time.monotonic()
        self._last_done = start
        self._speed = 0.0
        self._emit(start)

    def update(self, done: int) -> None:
        now = time.monotonic()
        elapsed = now - self._last_time
        if elapsed < PROGRESS_INTERVAL:
            return
        sample = (done - self._last_done) / elapsed
        # An average over about a second: steady, yet quick to follow a stall.
        weight = min(1.0, elapsed)
        self._speed = (
            sample
            if not self._speed
            else (weight * sample + (1 - weight) * self._speed)
        )
        self._last_time, self._last_done = now, done
        self._emit(done)

    def finish(self) -> None:
        self._emit(self._total)

    def _emit(self, done: int) -> None:
        if self._callback is None:
            return
        left = self._total - done
        eta = left / self._speed if self._speed > 0 else (0.0 if not left else None)
        self._callback(Progress(done, self._total, self._speed, eta, self._start))


class Downloader:
    """Downloads release images into the staging folder, resumably and verified."""

    def __init__(
        self,
        staging_dir: Path,
        *,
        segments: int = 4,
        timeout: float = 3600.0,
        chunk_size: int = CHUNK_SIZE,
        stall_timeout: float = 30.0,
        max_retries: int = 8,
        backoff: float = 0.5,
        backoff_cap: float = 30.0,
        sync_interval: float = 1.0,
        pause: Callable[[float], None] | None = None,
    ) -> None:
        if segments < 1 or chunk_size < 1 or timeout <= 0:
            raise ValueError("segments, chunk_size and timeout must be positive")
        self.staging_dir = Path(staging_dir)
        self.timeout = timeout
        self.chunk_size = chunk_size
        self._tuning = _Tuning(
            segments=segments,
            stall_timeout=stall_timeout,
            max_retries=max_retries,
            backoff=backoff,
            backoff_cap=backoff_cap,
            sync_interval=sync_interval,
            pause=pause,
        )

    def partial(self, name: str, size: int | None = None) -> int:
        """Bytes a resumed download of `name` would skip (0 if none).

        Give the release's `size`: a staged file or resume state of another size
        is replaced by the download, so it saves nothing.
        """
        files = _Files.of(self.staging_dir, _checked_name(name))
        with contextlib.suppress(FileNotFoundError):
            staged = files.complete.stat().st_size  # verified, not yet handed on
            if size is None or staged == size:
                return staged
        state = _load_state(files.state)
        if state is None or (size is not None and state.size != size):
            return 0
        try:
            on_disk = files.part.stat().st_size
        except OSError:
            return 0
        # _open_state starts afresh unless the whole size is reserved.
        return state.done() if on_disk == state.size else 0

    def discard(self, name: str) -> None:
        """Remove the partial file of `name` and its resume state."""
        _Files.of(self.staging_dir, _checked_name(name)).remove()

    def download(
        self,
        name: str,
        url: Callable[[], str],
        size: int,
        sha256: str,
        *,
        progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
        stop: threading.Event | None = None,
    ) -> Path:
        """Fetch `name` into the staging folder; the path of the verified file.

        `cancel` ends it and removes the partial file (DownloadCancelled);
        `stop` ends it and keeps the partial file for the next call to carry
        on from (DownloadStopped).
        """
        _check_request(name, size, sha256)
        files = _Files.of(self.staging_dir, name)
        watch = _Watch(time.monotonic() + self.timeout, progress, cancel, stop)
        if watch.stopping():
            raise self._stopped(name, size)  # before 24 GiB are reserved
        with self._claim(files) as fd:
            try:
                if self._adopt(name, files, size, sha256, watch):
                    return files.complete
                state = self._open_state(name, files, fd, size, sha256)
                with _opened_direct(files.part) as direct:
                    digest = self._run(
                        name, files, _Fds(fd, direct), state, _Link(url), watch
                    )
                self._verify(name, files, fd, size, sha256, digest)
            except _Halted:
                raise self._stopped(name, size) from None
            except _DISCARDING:
                files.remove()
                raise
            except DownloadStopped:
                raise
            except KioskError as exc:
                log.error("download of %s stopped: %s", name, exc.message)
                raise
        return files.complete

    def _stopped(self, name: str, size: int) -> DownloadStopped:
        done = self.partial(name, size)
        log.info("download of %s stopped with the station at %s bytes", name, done)
        return DownloadStopped(
            f"The download of {name} stopped with the station; it carries on "
            f"from {done * 100 // size} % at the next start."
        )

    def _run(
        self,
        name: str,
        files: _Files,
        fds: _Fds,
        state: _State,
        link: _Link,
        watch: _Watch,
    ) -> str:
        """Transfer until whole, starting over when the store demands it."""
        tuning = self._tuning
        for restart in range(MAX_RESTARTS + 1):
            transfer = _Transfer(name, files, fds, state, link, tuning)
            try:
                digest = transfer.run(watch)
            except _StartOver as exc:
                log.warning("download of %s starts over: %s", name, exc)
                # A store that ignores ranges twice gets one plain stream.
                single = restart >= 1
                tuning = _replace_segments(tuning, 1) if single else tuning
                state = self._fresh_state(
                    files, fds.buffered, state.size, state.sha256, single
                )
            except BaseException as exc:
                if not isinstance(exc, _DISCARDING):
                    with contextlib.suppress(KioskError, OSError):
                        transfer.checkpoint()
                raise
            else:
                log.info(
                    "download of %s complete; %s bytes hashed from disk, "
                    "the rest from memory",
                    name,
                    transfer.read_back,
                )
                return digest
        raise DownloadError(
            f"The store keeps restarting the download of {name}. "
            "Try again later; if it repeats, report the store's address."
        )

    def _open_state(
        self, name: str, files: _Files, fd: int, size: int, sha256: str
    ) -> _State:
        state = _load_state(files.state)
        on_disk = os.fstat(fd).st_size
        if state and (state.size, state.sha256, on_disk) == (size, sha256, size):
            log.info(
                "download of %s resumed at %s of %s bytes", name, state.done(), size
            )
            return state
        log.info("download of %s started (%s bytes)", name, size)
        return self._fresh_state(files, fd, size, sha256, single=False)

    def _adopt(
        self, name: str, files: _Files, size: int, sha256: str, watch: _Watch
    ) -> bool:
        """Keep a file an earlier run verified but stopped before handing on.

        It is hashed again at disk speed, which beats fetching 24 GiB anew; a
        mismatch deletes it and the download starts as usual. A cancel or a
        read error deletes it too; a stop keeps it for the next start.
        """
        try:
            if files.complete.stat().st_size != size:
                return False  # replaced when the new download verifies
        except FileNotFoundError:
            return False
        log.info("%s is already in staging; checking its SHA-256 again", name)
        meter = _Meter(size, 0, watch.progress)
        try:
            digest = _hash_file(name, files.complete, meter, watch)
        except _Halted:
            log.info("check of %s stopped with the station; file kept", name)
            raise DownloadStopped(
                f"The check of {name} stopped with the station; "
                "it is checked again at the next start."
            ) from None
        except DownloadCancelled:
            _delete(files.complete)
            raise
        except OSError as exc:
            _delete(files.complete)
            raise _read_error(exc, files.complete) from exc

        try:
            if digest != sha256:
                log.warning("%s in staging does not match the release; deleted", name)
                files.complete.unlink()
                return False
            files.remove()
            _sync_dir(files.part.parent)
        except OSError as exc:
            raise _storage_error(exc, files.complete, size) from exc
        meter.finish()
        log.info("download of %s verified (already in staging)", name)
        return True

    def _fresh_state(
        self, files: _Files, fd: int, size: int, sha256: str, single: bool
    ) -> _State:
        segments = self._tuning.segments
        spread = max(MIN_CHUNK_SIZE, -(-size // segments))
        chunk_size = size if single else min(self.chunk_size, spread)
        chunk_size = -(-chunk_size // ALIGN) * ALIGN  # chunks start on blocks
        state = _State.fresh(size, sha256, chunk_size)
        try:
            os.ftruncate(fd, 0)
            os.posix_fallocate(fd, 0, size)
            _save_state(files.state, state)
        except OSError as exc:
            raise _storage_error(exc, files.part, size) from exc
        return state

    def _verify(
        self, name: str, files: _Files, fd: int, size: int, sha256: str, digest: str
    ) -> None:
        on_disk = os.fstat(fd).st_size
        if digest != sha256 or on_disk != size:
            log.error(
                "download of %s corrupted: sha256 %s (expected %s), %s bytes",
                name,
                digest,
                sha256,
                on_disk,
            )
            raise CorruptedDownload(
                f"Corrupted download of {name}: its SHA-256 did not match the "
                "release, so nothing was kept. Download it again."
            )
        try:
            os.fdatasync(fd)
            os.replace(files.part, files.complete)
            # A kill while the state was being saved can leave its draft too.
            files.remove_state()
            _sync_dir(files.part.parent)
        except OSError as exc:
            raise _storage_error(exc, files.part, size) from exc
        log.info("download of %s verified (sha256 %s)", name, digest)

    @contextlib.contextmanager
    def _claim(self, files: _Files) -> Iterator[int]:
        """The open partial file, locked against a second download of it."""
        try:
            self.staging_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(files.part, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise _storage_error(exc, files.part, 0) from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DownloadError(
                    f"{files.complete.name} is already being downloaded. "
                    "Wait for that download to finish."
                ) from None
            yield fd
        finally:
            os.close(fd)


@contextlib.contextmanager
def _opened_direct(path: Path) -> Iterator[int | None]:
    """The file opened for O_DIRECT, or None where the file system refuses."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_DIRECT | os.O_CLOEXEC)
    except OSError as exc:
        log.info("no O_DIRECT for %s (%s); writing through the page cache", path, exc)
        yield None
        return
    try:
        yield fd
    finally:
        os.close(fd)


def _hash_file(name: str, path: Path, meter: _Meter, watch: _Watch) -> str:
    """The hex SHA-256 of the file at `path`, read in buffers between checks."""
    digest = hashlib.sha256()
    buffer = bytearray(BUFFER_SIZE)
    view = memoryview(buffer)
    done = 0
    with path.open("rb", buffering=0) as source:
        while True:
            watch.check(name)
            count = source.readinto(buffer)
            if not count:
                return digest.hexdigest()
            digest.update(view[:count])
            done += count
            meter.update(done)


def _delete(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not delete %s: %s", path, exc)


def _check_request(name: str, size: int, sha256: str) -> None:
    _checked_name(name)
    if size < 1:
        raise ValueError(f"size must be positive, not {size}")
    if not _SHA256.fullmatch(sha256):
        raise ValueError("sha256 must be 64 lowercase hex digits")


def _checked_name(name: str) -> str:
    if not name or name in {".", ".."} or "/" in name or "\0" in name:
        raise ValueError(f"not a plain file name: {name!r}")
    return name


def _length(span: tuple[int, int]) -> int:
    return span[1] - span[0]


def _replace_segments(tuning: _Tuning, segments: int) -> _Tuning:
    return _Tuning(**{**vars(tuning), "segments": segments})


def _validator(response: http.client.HTTPResponse) -> str | None:
    """A strong ETag, else Last-Modified: what If-Range may carry."""
    etag = response.getheader("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return response.getheader("Last-Modified")


def _retry_after(response: http.client.HTTPResponse) -> float | None:
    value = (response.getheader("Retry-After") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return min(max(0.0, when - time.time()), MAX_RETRY_AFTER)


def _load_state(path: Path) -> _State | None:
    try:
        return _State.from_json(json.loads(path.read_bytes()))
    except (OSError, ValueError):
        return None


def _save_state(path: Path, state: _State) -> None:
    """Write the state so that a crash leaves either the old or the new one."""
    temporary = _draft_of(path)
    with temporary.open("w") as out:
        json.dump(state.to_json(), out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    _sync_dir(path.parent)


def _draft_of(state: Path) -> Path:
    return state.with_suffix(".tmp")


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_error(exc: OSError, path: Path) -> StorageError:
    log.error("reading %s back failed: %s", path, exc)
    return StorageError(
        f"Could not read {path.name} back from {path.parent} ({exc.strerror}) "
        "to check it. Ask an operator to check the station's disk, then "
        "download it again."
    )


def _storage_error(exc: OSError, path: Path, size: int) -> StorageError:
    folder = path.parent
    log.error("staging %s failed: %s", path, exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageError(
            f"Not enough space in {folder} for a {size / 1e9:.1f} GB image. "
            "Delete old images in Settings, then try again."
        )
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return StorageError(
            f"The staging folder {folder} cannot be written. "
            "Ask an operator to check the station's disk."
        )
    return StorageError(
        f"Could not write to {folder} ({exc.strerror}). "
        "Ask an operator to check the station's disk."
    )
