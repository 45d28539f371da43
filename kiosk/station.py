"""The station as the touch screens see it: every service built from Settings.

This is the composition root. It opens (and migrates) the database, builds the
library, the portal client, updates, the outbox and flash jobs, watches the
drives, and keeps the live state of each drive bay. That state lives here and
not in a page so that a flash keeps its card when a person switches screens or
a second browser tab opens. Every method that may block is marked as such; the
UI calls those from worker threads only.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from kiosk import drives, smart
from kiosk.config import Settings
from kiosk.db import open_database
from kiosk.downloads import Downloader
from kiosk.errors import DriveError, KioskError
from kiosk.flashing import Flasher, Progress
from kiosk.flashjobs import FlashJobs, Outcome
from kiosk.flashlog import FlashLog
from kiosk.library import Image, Library
from kiosk.outbox import Outbox, OutboxSender
from kiosk.portal_client import PortalClient
from kiosk.updates import Updates
from kiosk.versions import Version

__all__ = ["Bay", "Station"]

log = logging.getLogger(__name__)

IdentityReader = Callable[[str, str | None], smart.DriveIdentity]


@dataclass(frozen=True)
class Bay:
    """One drive and what is happening to it, as one snapshot.

    A bay whose drive is refused (`drive.reason`) is shown with the reason
    and cannot be flashed: a line worker who plugged it in learns why.
    """

    drive: drives.Drive
    serial: str | None = None
    model: str = ""
    identity_error: str = ""
    version: Version | None = None
    running: bool = False
    progress: Progress | None = None
    outcome: Outcome | None = None

    @property
    def device(self) -> str:
        return self.drive.path

    @property
    def refusal(self) -> str:
        return self.drive.reason


class Station:
    """All services of one station and the live state of its drive bays."""

    def __init__(
        self,
        settings: Settings,
        *,
        flasher: Flasher | None = None,
        drive_poll_interval: float = 2.0,
        use_udev: bool = True,
        outbox_period: float = 60.0,
        portal_retries: int = 4,
        read_identity: IdentityReader = smart.read_identity,
    ) -> None:
        """Blocking: creates folders and migrates the database."""
        settings.make_dirs()
        self.settings = settings
        self.name = settings.station_name or socket.gethostname()
        sessions = open_database(settings.database_path)
        self.flash_log = FlashLog(sessions, self.name)
        self.library = Library(
            settings.recommended_dir,
            settings.quarantine_dir,
            keep=settings.max_stored_versions,
        )
        self.client = (
            PortalClient(
                settings.api_base_url, settings.station_token, retries=portal_retries
            )
            if settings.portal_configured
            else None
        )
        downloader = Downloader(
            settings.staging_dir,
            segments=settings.download_segments,
            timeout=settings.download_timeout,
        )
        self.updates = Updates(
            self.library, downloader, self.client, staging_dir=settings.staging_dir
        )
        self.outbox = Outbox(sessions, self.client) if self.client else None
        self.sender = (
            OutboxSender(self.outbox, period=outbox_period) if self.outbox else None
        )
        self.flash_jobs = FlashJobs(
            self.library,
            self.flash_log,
            data_dir=settings.data_dir,
            allow_without_serial=settings.allow_flash_without_serial,
            allow_loop=settings.allow_loop_targets,
            flasher=flasher,
            read_identity=read_identity,
        )
        self._read_identity = read_identity
        self.watcher = drives.DriveWatcher(
            on_add=self._drive_added,
            on_remove=self._drive_removed,
            poll_interval=drive_poll_interval,
            use_udev=use_udev,
        )
        self.dismissed: set[Version] = set()
        self.pending_records = 0
        self.drive_error = ""
        self._bays: dict[str, Bay] = {}
        self._cancels: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._check: threading.Thread | None = None

    def start(self) -> None:
        """Blocking: tidy up after a crash, then start the background work."""
        interrupted = self.flash_log.mark_interrupted()
        if interrupted:
            log.warning("%d flash records were left unfinished", interrupted)
        self.updates.startup("manual")  # tidies the library, no network
        self.refresh_drives()
        self.watcher.start()
        if self.sender is not None:
            self.sender.start()
        if self.client is not None and self.settings.check_interval == "startup_only":
            self._check = threading.Thread(
                target=self.updates.check_and_resume, name="update check", daemon=True
            )
            self._check.start()

    def stop(self) -> None:
        """Cancel flashes, stop a download (kept to resume), end the threads."""
        for cancel in list(self._cancels.values()):
            cancel.set()
        self.updates.shutdown()  # a running download keeps its progress
        self.watcher.stop()
        if self.sender is not None:
            self.sender.stop()
        self.updates.wait(10)
        if self.client is not None:
            self.client.close()

    # Images

    def default_image(self) -> Image | None:
        """Blocking (reads the folder): the newest verified local image."""
        images = self.library.images()
        return images[0] if images else None

    # Drive bays

    def bays(self) -> list[Bay]:
        """The drives shown and their flash state, in slot order."""
        with self._lock:
            return sorted(self._bays.values(), key=lambda bay: bay.drive.slot)

    def bay(self, device: str) -> Bay | None:
        with self._lock:
            return self._bays.get(device)

    def refresh_drives(self) -> None:
        """Blocking (lsblk, smartctl): bring the bays in line with the drives."""
        try:
            found = drives.list_drives(
                image_size=0,
                data_dir=self.settings.data_dir,
                allow_loop=self.settings.allow_loop_targets,
            )
        except DriveError as exc:
            self.drive_error = exc.message
            return
        self.drive_error = ""
        shown = {drive.path: drive for drive in found if _worth_a_card(drive)}
        with self._lock:
            for device, bay in list(self._bays.items()):
                if bay.running:
                    continue
                if device not in shown or not _same_drive(bay.drive, shown[device]):
                    del self._bays[device]  # gone, or another drive in its place
                elif bay.drive != shown[device]:  # e.g. unmounted, so now offered
                    self._bays[device] = dataclasses.replace(bay, drive=shown[device])
            new = [drive for path, drive in shown.items() if path not in self._bays]
        for drive in new:
            self._add_bay(drive)

    def flash(self, device: str, version: Version) -> None:
        """Start flashing one bay in its own thread; a no-op while it runs."""
        cancel = threading.Event()
        with self._lock:
            bay = self._bays.get(device)
            if bay is None or bay.running or bay.refusal:
                return
            self._bays[device] = dataclasses.replace(
                bay, version=version, running=True, progress=None, outcome=None
            )
            self._cancels[device] = cancel
        worker = threading.Thread(
            target=self._run_flash,
            args=(device, version, cancel),
            name=f"flash {device}",
            daemon=True,
        )
        worker.start()

    def cancel_flash(self, device: str) -> None:
        cancel = self._cancels.get(device)
        if cancel is not None:
            cancel.set()

    def refresh_pending(self) -> int:
        """Blocking (a database query): flash records not yet sent to the portal."""
        if self.outbox is not None:
            self.pending_records = self.outbox.pending()
        return self.pending_records

    def _run_flash(
        self, device: str, version: Version, cancel: threading.Event
    ) -> None:
        def progress(state: Progress) -> None:
            self._change(device, progress=state)

        outcome = self.flash_jobs.run(device, version, progress, cancel)
        self._change(device, running=False, outcome=outcome)
        self._cancels.pop(device, None)
        if self.sender is not None:
            self.sender.poke()

    def _change(self, device: str, **changes: object) -> None:
        with self._lock:
            bay = self._bays.get(device)
            if bay is not None:
                self._bays[device] = dataclasses.replace(bay, **changes)  # type: ignore[arg-type]

    def _add_bay(self, drive: drives.Drive) -> None:
        try:
            identity = self._read_identity(drive.path, drive.usb_id)
        except KioskError as exc:
            bay = Bay(drive, serial=None, model=drive.model, identity_error=exc.message)
        else:
            bay = Bay(drive, serial=identity.serial, model=identity.model)
        with self._lock:
            self._bays.setdefault(drive.path, bay)

    def _drive_added(self, device: str) -> None:
        log.info("drive %s appeared", device)
        self.refresh_drives()

    def _drive_removed(self, device: str) -> None:
        log.info("drive %s was removed", device)
        with self._lock:
            bay = self._bays.get(device)
            if bay is not None and not bay.running:
                del self._bays[device]
        self.refresh_drives()


def _same_drive(before: drives.Drive, now: drives.Drive) -> bool:
    """Whether a device node still holds the drive whose identity was read.

    A drive swapped between two scans gets the same /dev name; its serial
    must then be read again, or the card would name the old drive's.
    """
    fields = ("serial", "size", "model", "vendor", "usb_id")
    return all(getattr(before, name) == getattr(now, name) for name in fields)


def _worth_a_card(drive: drives.Drive) -> bool:
    """Offered drives, and refused ones that a line worker may have plugged in.

    Internal disks, empty card readers and refused loop devices (test set-ups
    only) would be noise on the screen; `python -m kiosk drives` lists them.
    """
    if drive.offered:
        return True
    if drive.size == 0 or drive.is_loop:
        return False
    return drive.transport == "usb" or drive.removable
