"""A flash job: one drive, from its checks to a recorded outcome.

The services meet here. A drive is checked as a target and its serial read
before anything is written; the image is leased from the library so pruning
cannot remove it mid-flash; the flash record is committed before the first
byte (the flasher's start hook) and completed whatever happens. A drive that
is refused still gets a record that says why, so QA sees every attempt.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kiosk import drives, smart
from kiosk.errors import DriveError, KioskError
from kiosk.flashing import Flasher, FlashResult, Progress
from kiosk.flashlog import FlashLog, Status
from kiosk.library import Image, Library
from kiosk.versions import Version

log = logging.getLogger(__name__)

IdentityReader = Callable[[str, str | None], smart.DriveIdentity]


@dataclass(frozen=True)
class Outcome:
    """How one drive's flash ended, as a person should see it."""

    device: str
    status: Status
    error: str = ""
    record_id: str | None = None
    slot: str = ""
    serial: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == Status.PASSED


@dataclass
class FlashJob:
    """A flash running in its own thread; cancel() and wait() per drive."""

    device: str
    cancel_event: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None
    thread: threading.Thread | None = None

    def cancel(self) -> None:
        self.cancel_event.set()

    def wait(self, timeout: float | None = None) -> Outcome | None:
        if self.thread is not None:
            self.thread.join(timeout)
        return self.outcome


class FlashJobs:
    """Starts independent flash jobs; one drive's failure touches no other."""

    def __init__(
        self,
        library: Library,
        flash_log: FlashLog,
        *,
        data_dir: Path,
        allow_without_serial: bool = False,
        allow_loop: bool = False,
        flasher: Flasher | None = None,
        read_identity: IdentityReader = smart.read_identity,
    ) -> None:
        self._library = library
        self._log = flash_log
        self._data_dir = data_dir
        self._allow_without_serial = allow_without_serial
        self._allow_loop = allow_loop
        self._flasher = flasher or Flasher()
        self._read_identity = read_identity

    def start(
        self,
        device: str,
        version: Version,
        progress: Callable[[Progress], None] | None = None,
    ) -> FlashJob:
        job = FlashJob(device)

        def work() -> None:
            job.outcome = self.run(device, version, progress, job.cancel_event)

        job.thread = threading.Thread(target=work, name=f"job {device}", daemon=True)
        job.thread.start()
        return job

    def run(
        self,
        device: str,
        version: Version,
        progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Outcome:
        """Check, flash and record one drive; blocking, never raises."""
        try:
            with self._library.reading(version) as image:
                return self._flash(device, image, progress, cancel)
        except KioskError as exc:
            return self._refused(device, str(version), exc.message)
        except Exception as exc:  # one drive's bug must not end the others
            log.exception("flash job for %s failed unexpectedly", device)
            return self._refused(
                device, str(version), f"Flashing {device} failed unexpectedly: {exc}"
            )

    def _flash(
        self,
        device: str,
        image: Image,
        progress: Callable[[Progress], None] | None,
        cancel: threading.Event | None,
    ) -> Outcome:
        try:
            drive = drives.validate_target(
                device,
                image_size=image.size,
                data_dir=self._data_dir,
                allow_loop=self._allow_loop,
            )
        except drives.DriveRefused as exc:
            # The record of a refused drive still names it, so QA can trace it.
            known, _ = self._identify(exc.drive)
            return self._refused(
                device,
                str(image.version),
                exc.message,
                exc.drive.slot,
                known.model if known else exc.drive.model,
                known.serial if known else None,
            )
        identity, serial_problem = self._identify(drive)
        refusal = smart.flash_refusal(
            identity, allow_without_serial=self._allow_without_serial
        )
        serial = identity.serial if identity else None
        model = identity.model if identity else drive.model
        if refusal:
            detail = f" ({serial_problem})" if serial_problem else ""
            return self._refused(
                device, str(image.version), refusal + detail, drive.slot, model
            )
        record: list[str] = []

        def write_record() -> None:
            record.append(
                self._log.start(
                    device=device,
                    image_version=str(image.version),
                    image_sha256=image.sha256,
                    image_size=image.size,
                    serial=serial,
                    model=model or None,
                    slot=drive.slot,
                )
            )

        result = self._flasher.flash(
            device,
            image.path,
            image.sha256,
            image.size,
            progress=progress,
            cancel=cancel,
            serial=serial,
            reread_serial=(lambda: self._reread(drive)) if serial else None,
            on_start=write_record,
        )
        return self._finish(result, record, drive.slot, serial)

    def _identify(self, drive: drives.Drive) -> tuple[smart.DriveIdentity | None, str]:
        try:
            return self._read_identity(drive.path, drive.usb_id), ""
        except DriveError as exc:
            log.warning("no identity for %s: %s", drive.path, exc.message)
            return None, exc.message

    def _reread(self, drive: drives.Drive) -> str | None:
        try:
            return self._read_identity(drive.path, drive.usb_id).serial
        except DriveError:
            return None

    def _finish(
        self, result: FlashResult, record: list[str], slot: str, serial: str | None
    ) -> Outcome:
        status = Status(result.status)
        if not record:  # the record could not be written, so nothing was
            return Outcome(
                result.target, Status.FAILED, result.error, None, slot, serial
            )
        self._log.finish(
            record[0],
            status,
            bytes_written=result.bytes_written,
            readback_sha256=result.readback_sha256 or None,
            error=result.error or None,
        )
        return Outcome(result.target, status, result.error, record[0], slot, serial)

    def _refused(
        self,
        device: str,
        version: str,
        reason: str,
        slot: str | None = None,
        model: str | None = None,
        serial: str | None = None,
    ) -> Outcome:
        log.warning("flash of %s refused: %s", device, reason)
        try:
            record_id = self._log.start(
                device=device,
                image_version=version,
                image_sha256="",
                image_size=0,
                serial=serial,
                slot=slot,
                model=model or None,
            )
            self._log.finish(record_id, Status.FAILED, bytes_written=0, error=reason)
        except Exception:
            log.exception("could not record the refused flash of %s", device)
            record_id = None
        return Outcome(device, Status.FAILED, reason, record_id, slot or "", serial)
