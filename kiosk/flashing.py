"""Write an image to a drive, then prove it by reading the drive back.

Why it is done this way:

- Writes go out with O_DIRECT in large blocks. O_DIRECT bypasses the page
  cache, so progress counts bytes the drive accepted rather than bytes parked
  in memory, and a 24 GB image does not evict everything else from the cache.
  The kernel demands that buffer address, file offset and length be multiples
  of the logical block size; buffers come from anonymous mmaps (page aligned)
  and every block is a multiple of 4096, which covers 512- and 4096-byte
  sectors. The image's last partial block cannot be written that way, so it
  goes through a second, buffered descriptor.
- Where O_DIRECT is refused (tmpfs on older kernels, some FUSE mounts) the
  writer falls back to buffered writes with an fsync every few hundred
  megabytes, which keeps the dirty cache bounded and the progress honest.
- fsync at the end makes the drive flush its own write cache before verify.
- Verify must read the medium, not the page cache: a drive that dropped data
  would otherwise pass. Reads use O_DIRECT; where that is refused the cached
  pages are dropped first (posix_fadvise DONTNEED, and BLKFLSBUF for block
  devices, which also empties the device's buffer cache).
- SHA-256 on one core is the slowest stage, so hashing runs in its own thread
  fed through a bounded queue of reused buffers; allocating a fresh buffer per
  block costs as much as the hashing.
- Only the read-back is hashed. Its SHA-256 equal to the release's proves
  the drive holds the release, whatever happened to the image file; hashing
  the image on the way as well would double the CPU a flash needs, and three
  drives at once would compete for it. When the read-back differs, the image
  is hashed then, to say whether the drive or the station's copy is at fault.

One `Flasher.flash` call handles one drive and never raises; `Flasher.start`
runs it in its own thread so several drives are flashed independently.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import mmap
import os
import queue
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from kiosk.library import human_size

__all__ = [
    "FlashResult",
    "FlashRun",
    "Flasher",
    "Phase",
    "Progress",
    "Status",
]

log = logging.getLogger(__name__)

Phase = Literal["writing", "verifying", "done"]
Status = Literal["passed", "failed", "cancelled"]

ALIGNMENT = 4096
DEFAULT_BLOCK_SIZE = 4 * 1024 * 1024
DEFAULT_BUFFERS = 8
BUFFERED_FSYNC_EVERY = 256 * 1024 * 1024
BLKFLSBUF = 0x1261  # <linux/fs.h>: flush the block device's buffer cache
_DISAPPEARED = {errno.ENODEV, errno.ENXIO, errno.ENOENT, errno.ESHUTDOWN}


@dataclass(frozen=True)
class Progress:
    """Where one drive's flash stands; speed in bytes per second."""

    target: str
    phase: Phase
    done_bytes: int
    total_bytes: int
    speed: float
    eta_seconds: float | None


@dataclass
class FlashResult:
    """The outcome of one flash, ready to be stored in the flash log."""

    target: str
    status: Status
    error: str
    bytes_written: int
    image_sha256: str
    readback_sha256: str
    started_at: datetime
    ended_at: datetime

    @property
    def passed(self) -> bool:
        return self.status == "passed"


class _FlashFailed(Exception):
    """Internal: ends a flash with one plain sentence."""

    def __init__(self, message: str, status: Status = "failed") -> None:
        super().__init__(message)
        self.message = message
        self.status = status


ProgressCallback = Callable[[Progress], None]
SerialReader = Callable[[], "str | None"]


@dataclass
class _Pass:
    """Speed and throttling state of one pass over the image."""

    target: str
    phase: Phase
    total: int
    remaining_after: int
    callback: ProgressCallback | None
    interval: float
    clock: Callable[[], float]
    started: float = 0.0
    last_report: float = field(default=float("-inf"))

    def report(self, done: int, *, force: bool = False) -> None:
        now = self.clock()
        if self.callback is None:
            return
        if not force and now - self.last_report < self.interval:
            return

        self.last_report = now
        elapsed = now - self.started
        speed = done / elapsed if elapsed > 0 else 0.0
        left = self.total - done + self.remaining_after
        eta = left / speed if speed > 0 else None
        _notify(
            self.callback,
            Progress(self.target, self.phase, done, self.total, speed, eta),
        )


def _notify(callback: ProgressCallback, progress: Progress) -> None:
    try:
        callback(progress)
    except Exception:
        # A broken progress display must not fail the drive being flashed.
        log.exception("progress callback for %s failed", progress.target)


class _Hasher:
    """SHA-256 in its own thread, fed buffers that go back to the pool after."""

    def __init__(self, pool: queue.Queue[mmap.mmap], name: str) -> None:
        self._pool = pool
        self._work: queue.Queue[tuple[mmap.mmap, int] | None] = queue.Queue(
            maxsize=pool.maxsize
        )
        self._sha = hashlib.sha256()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def feed(self, buffer: mmap.mmap, length: int) -> None:
        self._work.put((buffer, length))

    def finish(self) -> str:
        """Wait for every fed buffer to be hashed; the hex digest."""
        self._work.put(None)
        self._thread.join()
        return self._sha.hexdigest()

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            buffer, length = item
            with memoryview(buffer) as view:
                self._sha.update(view[:length])
            self._pool.put(buffer)


class Flasher:
    """Writes images to drives and verifies them; one call per drive."""

    def __init__(
        self,
        *,
        block_size: int = DEFAULT_BLOCK_SIZE,
        buffers: int = DEFAULT_BUFFERS,
        progress_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        before_verify: Callable[[str], None] | None = None,
    ) -> None:
        """`before_verify(target)` runs between the passes (tests corrupt there)."""
        if block_size <= 0 or block_size % ALIGNMENT:
            raise ValueError(f"block_size must be a multiple of {ALIGNMENT}")
        self.block_size = block_size
        self.buffers = buffers
        self.progress_interval = progress_interval
        self.clock = clock
        self.before_verify = before_verify

    def start(
        self,
        target: str | Path,
        image_path: Path,
        image_sha256: str,
        size: int,
        *,
        progress: ProgressCallback | None = None,
        serial: str | None = None,
        reread_serial: SerialReader | None = None,
        on_start: Callable[[], None] | None = None,
    ) -> FlashRun:
        """Flash in a new thread; the returned run can be cancelled and waited on."""
        run = FlashRun(str(target))

        def work() -> None:
            run.result = self.flash(
                target,
                image_path,
                image_sha256,
                size,
                progress=progress,
                cancel=run.cancel_event,
                serial=serial,
                reread_serial=reread_serial,
                on_start=on_start,
            )

        run.thread = threading.Thread(target=work, name=f"flash {target}", daemon=True)
        run.thread.start()
        return run

    def flash(
        self,
        target: str | Path,
        image_path: Path,
        image_sha256: str,
        size: int,
        *,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        serial: str | None = None,
        reread_serial: SerialReader | None = None,
        on_start: Callable[[], None] | None = None,
    ) -> FlashResult:
        """Write and verify one drive; blocking, never raises, result says all.

        `on_start` runs before the target is opened (write the flash record
        there); if it raises, nothing is written. `serial` is the serial read
        before the flash; `reread_serial` reads it again at the end.
        """
        target = str(target)
        cancel = cancel or threading.Event()
        started_at = datetime.now(UTC)
        job = _Job(
            self, target, image_path, image_sha256.lower(), size, progress, cancel
        )
        log.info(
            "flash of %s started: %s (%s)", target, image_path.name, human_size(size)
        )
        try:
            if on_start is not None:
                _run_start_hook(on_start, target)
            job.run()
            _check_serial(target, serial, reread_serial)
            status: Status = "passed"
            error = ""
            log.info("flash of %s passed (%s)", target, human_size(size))
        except _FlashFailed as exc:
            status, error = exc.status, exc.message
            log.warning("flash of %s %s: %s", target, status, error)
        except Exception as exc:  # one drive's bug must not end the others
            status = "failed"
            error = f"Flashing {target} failed unexpectedly ({exc}); try again."
            log.exception("flash of %s failed unexpectedly", target)
        return FlashResult(
            target=target,
            status=status,
            error=error,
            bytes_written=job.bytes_written,
            image_sha256=job.image_digest,
            readback_sha256=job.readback_digest,
            started_at=started_at,
            ended_at=datetime.now(UTC),
        )


@dataclass
class FlashRun:
    """A flash running in its own thread."""

    target: str
    cancel_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    result: FlashResult | None = None

    def cancel(self) -> None:
        self.cancel_event.set()

    def wait(self, timeout: float | None = None) -> FlashResult | None:
        """The result once the flash ended, else None after `timeout`."""
        if self.thread is not None:
            self.thread.join(timeout)
        return self.result


class _Job:
    """The state of one flash: both passes over one target."""

    def __init__(
        self,
        flasher: Flasher,
        target: str,
        image_path: Path,
        image_sha256: str,
        size: int,
        progress: ProgressCallback | None,
        cancel: threading.Event,
    ) -> None:
        self.flasher = flasher
        self.target = target
        self.image_path = image_path
        self.expected = image_sha256
        self.size = size
        self.progress = progress
        self.cancel = cancel
        self.bytes_written = 0
        self.image_digest = ""
        self.readback_digest = ""
        self.is_block_device = False
        self.pool: queue.Queue[mmap.mmap] = queue.Queue(maxsize=flasher.buffers)

    def run(self) -> None:
        # Page-aligned buffers, made once and reused by both passes.
        for _ in range(self.flasher.buffers):
            self.pool.put(mmap.mmap(-1, self.flasher.block_size))
        self._write()
        if self.flasher.before_verify is not None:
            self.flasher.before_verify(self.target)
        self._verify()
        if self.readback_digest != self.expected:
            self._blame()
        self.image_digest = self.expected
        if self.progress is not None:
            _notify(
                self.progress,
                Progress(self.target, "done", self.size, self.size, 0.0, 0.0),
            )

    def _blame(self) -> None:
        """After a read-back mismatch: the image's fault or the drive's."""
        log.warning(
            "read-back of %s gave sha256 %s, expected %s; checking the image",
            self.target,
            self.readback_digest,
            self.expected,
        )
        self.image_digest = self._hash_image()
        if self.image_digest != self.expected:
            log.error(
                "image %s hashes to %s, not its recorded %s",
                self.image_path,
                self.image_digest,
                self.expected,
            )
            raise _FlashFailed(
                f"The image {self.image_path.name} no longer matches its "
                "checksum; re-verify the images in Settings and flash again."
            )
        raise _FlashFailed(
            f"Reading {self.target} back did not give the image (SHA-256 "
            "differs); the drive did not store it. Use another drive."
        )

    def _hash_image(self) -> str:
        hasher = _Hasher(self.pool, f"hash image {self.target}")
        try:
            with _open_image(self.image_path) as image:
                reader = _ImageReader(image, self.image_path, self.size, self.pool)
                try:
                    for buffer, length in reader.blocks(self.flasher.block_size):
                        self._check_cancel()
                        hasher.feed(buffer, length)
                finally:
                    reader.close()
        finally:
            digest = hasher.finish()
        return digest

    def _write(self) -> None:
        if self.size <= 0:
            raise _FlashFailed("The image is empty; choose another image.")
        meter = self._pass("writing", remaining_after=self.size)
        try:
            with (
                _open_image(self.image_path) as image,
                _Writer(self.target, self.size) as writer,
            ):
                self.is_block_device = writer.is_block_device
                reader = _ImageReader(image, self.image_path, self.size, self.pool)
                try:
                    position = 0
                    for buffer, length in reader.blocks(self.flasher.block_size):
                        self._check_cancel()
                        try:
                            writer.write(buffer, length, position)
                        finally:
                            self.pool.put(buffer)
                        position += length
                        self.bytes_written = position
                        meter.report(position)
                finally:
                    reader.close()
                writer.finish()
        except OSError as exc:
            raise _FlashFailed(self._write_error(exc)) from exc
        meter.report(self.size, force=True)

    def _write_error(self, exc: OSError) -> str:
        """The sentence for a failed write; a full block device is special.

        Its capacity was checked before the first byte. If it still claims
        room for the image, it lied (counterfeit or failing); if it no longer
        does, it was pulled out, since an unplugged disk drops to size 0 and
        its writes fail with ENOSPC too.
        """
        if not self.is_block_device or exc.errno not in (errno.ENOSPC, errno.EFBIG):
            return _os_error_sentence(
                exc, self.target, self.size, started=self.bytes_written > 0
            )
        if not _still_has_capacity(self.target, self.size):
            log.error("%s lost its capacity during the write: %s", self.target, exc)
            return _unplugged(self.target)
        log.error("%s full after %d bytes: %s", self.target, self.bytes_written, exc)
        return (
            f"{self.target} stopped taking data after "
            f"{human_size(self.bytes_written)}, though it reports room for the "
            "image; it may be counterfeit or failing. Use another drive."
        )

    def _verify(self) -> None:
        meter = self._pass("verifying", remaining_after=0)
        hasher = _Hasher(self.pool, f"hash read-back {self.target}")
        try:
            with _open_uncached(self.target, self.is_block_device) as fd:
                position = 0
                while position < self.size:
                    self._check_cancel()
                    buffer = self.pool.get()
                    want = _round_up(min(self.flasher.block_size, self.size - position))
                    got = _read_block(fd, buffer, want, position)
                    if got <= 0:
                        self.pool.put(buffer)
                        if self.is_block_device and not _still_has_capacity(
                            self.target, self.size
                        ):
                            raise _FlashFailed(_unplugged(self.target))
                        raise _FlashFailed(
                            f"{self.target} returned less data than was "
                            "written; the drive is smaller than it claims. "
                            "Use another drive."
                        )
                    usable = min(got, self.size - position)
                    hasher.feed(buffer, usable)
                    position += usable
                    meter.report(position)
        except OSError as exc:
            sentence = _os_error_sentence(exc, self.target, self.size, started=True)
            raise _FlashFailed(sentence) from exc
        finally:
            self.readback_digest = hasher.finish()
        meter.report(self.size, force=True)

    def _pass(self, phase: Phase, *, remaining_after: int) -> _Pass:
        meter = _Pass(
            self.target,
            phase,
            self.size,
            remaining_after,
            self.progress,
            self.flasher.progress_interval,
            self.flasher.clock,
        )
        meter.started = self.flasher.clock()
        meter.report(0, force=True)
        return meter

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise _FlashFailed(
                f"Cancelled; {self.target} holds a partial image. "
                "Flash it again before use.",
                status="cancelled",
            )


class _ImageReader:
    """Reads the image ahead of the writer, in its own thread, into pool buffers.

    Reading the image and writing the drive then overlap, so a flash takes
    the longer of the two rather than their sum.
    """

    def __init__(
        self, fd: int, path: Path, size: int, pool: queue.Queue[mmap.mmap]
    ) -> None:
        self._fd = fd
        self._path = path
        self._size = size
        self._pool = pool
        # Unbounded, yet never longer than the pool: each item holds a buffer.
        self._blocks: queue.Queue[tuple[mmap.mmap, int] | BaseException | None] = (
            queue.Queue()
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def blocks(self, block_size: int) -> Iterator[tuple[mmap.mmap, int]]:
        """Each filled buffer and its length, in order; re-raises read errors."""
        self._thread = threading.Thread(
            target=self._run, args=(block_size,), name=f"read {self._path}", daemon=True
        )
        self._thread.start()
        while (item := self._blocks.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop reading; buffers not yet written go back to the pool."""
        self._stop.set()
        while self._thread is not None and (
            self._thread.is_alive() or not self._blocks.empty()
        ):
            try:
                item = self._blocks.get(timeout=0.05)
            except queue.Empty:
                continue
            if isinstance(item, tuple):
                self._pool.put(item[0])
        if self._thread is not None:
            self._thread.join()

    def _run(self, block_size: int) -> None:
        try:
            position = 0
            while position < self._size:
                buffer = self._free_buffer()
                if buffer is None:
                    return
                length = min(block_size, self._size - position)
                _read_image_block(self._fd, buffer, length, self._path)
                self._blocks.put((buffer, length))
                position += length
            self._blocks.put(None)
        except BaseException as exc:  # the writer re-raises it in its thread
            self._blocks.put(exc)

    def _free_buffer(self) -> mmap.mmap | None:
        while not self._stop.is_set():
            try:
                return self._pool.get(timeout=0.1)
            except queue.Empty:
                continue
        return None


class _Writer:
    """The target opened for writing: O_DIRECT where possible, else buffered."""

    def __init__(self, target: str, size: int) -> None:
        self.target = target
        self.size = size
        self.is_block_device = False
        self.direct_fd = -1
        self.buffered_fd = -1
        self.unsynced = 0

    def __enter__(self) -> _Writer:
        flags = os.O_WRONLY | os.O_CLOEXEC
        try:
            mode = os.stat(self.target).st_mode
        except FileNotFoundError:
            mode = 0
        self.is_block_device = stat.S_ISBLK(mode)
        exclusive = 0
        if self.is_block_device:
            # O_EXCL on a block device fails with EBUSY while it is mounted.
            exclusive = os.O_EXCL
            _check_device_size(self.target, self.size)
        elif mode == 0:
            flags |= os.O_CREAT

        try:
            self.direct_fd = os.open(
                self.target, flags | exclusive | os.O_DIRECT, 0o644
            )
            exclusive = 0  # the direct descriptor holds the exclusive claim
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            log.info("%s refuses O_DIRECT; writing through the page cache", self.target)
        try:
            self.buffered_fd = os.open(self.target, flags | exclusive, 0o644)
        except OSError:
            self.__exit__()
            raise
        return self

    def write(self, buffer: mmap.mmap, length: int, position: int) -> None:
        aligned = length - length % ALIGNMENT
        with memoryview(buffer) as view:
            if self.direct_fd >= 0 and aligned:
                try:
                    _write_all(self.direct_fd, view[:aligned], position)
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    # Open succeeded but the filesystem refuses direct writes.
                    log.info(
                        "%s refuses O_DIRECT writes; using the page cache", self.target
                    )
                    os.close(self.direct_fd)
                    self.direct_fd = -1
                    aligned = 0
            else:
                aligned = 0
            if aligned < length:
                _write_all(self.buffered_fd, view[aligned:length], position + aligned)
                self.unsynced += length - aligned
        if self.unsynced >= BUFFERED_FSYNC_EVERY:
            os.fsync(self.buffered_fd)
            self.unsynced = 0

    def finish(self) -> None:
        """Flush the kernel's and the drive's caches."""
        os.fsync(self.buffered_fd)
        if self.direct_fd >= 0:
            os.fsync(self.direct_fd)

    def __exit__(self, *exc: object) -> None:
        for fd in (self.direct_fd, self.buffered_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)


def _write_all(fd: int, view: memoryview, position: int) -> None:
    written = 0
    while written < len(view):
        count = os.pwrite(fd, view[written:], position + written)
        if count <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written += count


def _still_has_capacity(target: str, size: int) -> bool:
    """Whether the device is there and still reports room for `size` bytes."""
    try:
        return _capacity(target) >= size
    except OSError:
        return False


def _unplugged(target: str) -> str:
    return (
        f"{target} disappeared during the flash; it was unplugged. "
        "Plug it in and flash it again."
    )


def _capacity(target: str) -> int:
    """The size a block device reports, in bytes."""
    fd = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def _check_device_size(target: str, size: int) -> None:
    capacity = _capacity(target)
    if capacity < size:
        raise _FlashFailed(
            f"{target} is too small for this image: {human_size(size)} needed, "
            f"{human_size(capacity)} available. Use a larger drive."
        )


@contextlib.contextmanager
def _open_image(path: Path) -> Iterator[int]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        log.error("cannot open image %s: %s", path, exc)
        raise _FlashFailed(
            f"The image {path.name} cannot be read ({exc.strerror}); "
            "re-verify the images in Settings."
        ) from exc
    try:
        # Doubles the kernel's read-ahead on the image; it is read straight through.
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        yield fd
    finally:
        os.close(fd)


def _read_image_block(fd: int, buffer: mmap.mmap, length: int, path: Path) -> None:
    with memoryview(buffer) as view:
        got = 0
        while got < length:
            try:
                count = os.readv(fd, [view[got:length]])
            except OSError as exc:
                log.error("reading image %s failed: %s", path, exc)
                raise _FlashFailed(
                    f"The image {path.name} cannot be read ({exc.strerror}); "
                    "check the station's disk."
                ) from exc
            if count == 0:
                raise _FlashFailed(
                    f"The image {path.name} is shorter than its recorded size; "
                    "re-verify the images in Settings."
                )
            got += count


@contextlib.contextmanager
def _open_uncached(target: str, is_block_device: bool) -> Iterator[int]:
    """Open for reading so that reads come from the medium, not from memory."""
    flags = os.O_RDONLY | os.O_CLOEXEC
    try:
        fd = os.open(target, flags | os.O_DIRECT)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        fd = os.open(target, flags)
    try:
        # Dropping the cache also covers the buffered tail and the fallback.
        if is_block_device:
            try:
                fcntl.ioctl(fd, BLKFLSBUF)
            except OSError as exc:
                log.debug("BLKFLSBUF on %s refused: %s", target, exc)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        yield fd
    finally:
        os.close(fd)


def _read_block(fd: int, buffer: mmap.mmap, want: int, position: int) -> int:
    with memoryview(buffer) as view:
        try:
            return os.preadv(fd, [view[:want]], position)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
        # O_DIRECT refused this read (e.g. an odd sector size): read cached.
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
        return os.preadv(fd, [view[:want]], position)


def _round_up(length: int) -> int:
    return -(-length // ALIGNMENT) * ALIGNMENT


def _run_start_hook(on_start: Callable[[], None], target: str) -> None:
    try:
        on_start()
    except Exception as exc:
        log.exception("start hook for %s failed", target)
        raise _FlashFailed(
            "The flash record could not be written, so nothing was written to "
            f"{target}; check the station's disk and try again."
        ) from exc


def _check_serial(target: str, serial: str | None, reread: SerialReader | None) -> None:
    if serial is None or reread is None:
        return
    try:
        now = reread()
    except Exception as exc:
        log.warning("reading the serial of %s again failed: %s", target, exc)
        now = None
    if now is None:
        raise _FlashFailed(
            f"The serial of {target} could not be read again after the flash; "
            "it may have been unplugged. Plug it in and flash it again."
        )
    if now != serial:
        raise _FlashFailed(
            f"The drive at {target} was swapped during the flash (serial "
            f"{serial} at the start, {now} at the end); flash the new drive again."
        )


def _os_error_sentence(exc: OSError, target: str, size: int, *, started: bool) -> str:
    """One plain sentence for an I/O error on the target; details to the log."""
    log.error("I/O on %s failed: %s", target, exc)
    code = exc.errno
    if code in _DISAPPEARED and not started:
        return (
            f"{target} was not found ({exc.strerror}); check that the drive is "
            "plugged in and try again."
        )
    if code in _DISAPPEARED or (code == errno.EIO and not os.path.exists(target)):
        return _unplugged(target)
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            f"{target} cannot be written (write-protected or no permission); "
            "check the drive's lock switch or use another drive."
        )
    if code in (errno.ENOSPC, errno.EFBIG):
        return (
            f"{target} ran out of space: the image needs {human_size(size)}. "
            "Use a larger drive."
        )
    if code == errno.EBUSY:
        return (
            f"{target} is in use (mounted or opened by another program); "
            "unmount it and try again."
        )
    if code == errno.EIO:
        return (
            f"{target} reported an I/O error; the drive may be failing. "
            "Use another drive."
        )
    return f"Flashing {target} failed ({exc.strerror}); try again or use another drive."
