"""Updates: ask the portal for its latest release and bring it into the library.

One download runs at a time, in a worker thread; the UI and the command line
read `status()` (a frozen snapshot) or subscribe to changes. When the portal
cannot be reached the status says so and everything local keeps working.
`startup()` and `check()` wait for the network (with retries): the UI must
call them from a worker thread, never on the event loop. `cancel()` throws the
partial file away; `shutdown()`, for a station that stops, keeps it so that
the next start carries on.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from kiosk.config import CheckInterval
from kiosk.downloads import Downloader, Progress
from kiosk.errors import (
    DownloadCancelled,
    DownloadError,
    DownloadStopped,
    KioskError,
    PortalError,
    PortalOffline,
)
from kiosk.library import Library
from kiosk.portal_client import PortalClient, Release
from kiosk.versions import Version

__all__ = ["DownloadState", "DownloadStatus", "UpdateStatus", "Updates"]

log = logging.getLogger(__name__)


class DownloadState(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    STOPPED = "stopped"  # the station stopped; the partial file is kept


@dataclass(frozen=True)
class DownloadStatus:
    """The current or last download."""

    version: Version
    state: DownloadState
    done: int = 0
    total: int = 0
    speed: float = 0.0
    eta: float | None = None
    resumed_from: int = 0
    error: str = ""


@dataclass(frozen=True)
class UpdateStatus:
    """What the station knows about updates, as one consistent snapshot."""

    latest: Release | None = None
    local: tuple[Version, ...] = ()
    checked_at: datetime | None = None
    offline_since: datetime | None = None
    error: str = ""  # why the last check failed, as one sentence
    download: DownloadStatus | None = None

    @property
    def offline(self) -> bool:
        return self.offline_since is not None

    @property
    def no_release(self) -> bool:
        """The portal answered that nothing is published yet."""
        return self.checked_at is not None and self.latest is None

    @property
    def update_available(self) -> bool:
        return self.latest is not None and self.latest.version not in self.local

    @property
    def downloading(self) -> bool:
        return (
            self.download is not None and self.download.state is DownloadState.RUNNING
        )


Listener = Callable[[UpdateStatus], None]


class Updates:
    """Checks for updates and runs one download at a time."""

    def __init__(
        self,
        library: Library,
        downloader: Downloader,
        client: PortalClient | None,
        *,
        staging_dir: Path,
    ) -> None:
        self.library = library
        self.downloader = downloader
        self.client = client
        self.staging_dir = staging_dir
        self._lock = threading.Lock()
        self._status = UpdateStatus(local=tuple(library.versions()))
        self._listeners: list[Listener] = []
        self._worker: threading.Thread | None = None
        self._cancel = threading.Event()
        self._stop = threading.Event()  # set by shutdown(), never cleared
        self._start_lock = threading.Lock()

    def status(self) -> UpdateStatus:
        with self._lock:
            return self._status

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` with every new status (from the worker thread too)."""
        self._listeners.append(listener)

    def startup(self, check_interval: CheckInterval) -> UpdateStatus:
        """Run once at start: tidy the library, then check unless set to manual.

        Tidying also keeps `max_stored_versions`, which may have been lowered
        since the last download, or a crash may have left one image too many.
        """
        self.library.clean()
        self.library.prune()
        tidied = self._update(local=tuple(self.library.versions()))
        return self.check_and_resume() if check_interval == "startup_only" else tidied

    def check_and_resume(self) -> UpdateStatus:
        """Check; a download of the latest that a stop cut short carries on.

        A kill, a power cut or a lost network leave the partial file and its
        state in staging; nobody should have to notice and press Download.
        """
        status = self.check()
        latest = status.latest
        if latest is None or latest.version in status.local:
            return status
        done = self.downloader.partial(latest.version.image_name, latest.file_size)
        if done == 0:
            return status
        log.info("resuming the download of %s at %d bytes", latest.version, done)
        try:
            self.start_download(latest.version)
        except DownloadStopped:
            log.info("the download of %s waits for the next start", latest.version)
        except KioskError as exc:
            log.warning(
                "the download of %s did not resume: %s", latest.version, exc.message
            )
        return self.status()

    def check(self) -> UpdateStatus:
        """Ask the portal for its latest release; never raises for portal trouble."""
        local = tuple(self.library.versions())
        if self.client is None:
            return self._update(
                local=local,
                error="No portal is set up (api_base_url); only local images "
                "can be used.",
            )
        try:
            latest = self.client.latest(holding=local)
        except PortalOffline as exc:
            return self._update(
                local=local,
                offline_since=self.client.offline_since,
                error=exc.message,
            )
        except PortalError as exc:
            return self._update(local=local, offline_since=None, error=exc.message)

        log.info("update check: latest=%s local=%s", latest and latest.version, local)
        return self._update(
            latest=latest,
            local=local,
            checked_at=datetime.now().astimezone(),
            offline_since=None,
            error="",
        )

    def start_download(self, version: Version | None = None) -> DownloadStatus:
        """Start fetching `version` (default: latest); DONE at once if already here."""
        if self.client is None:
            raise PortalError(
                "No portal is set up; set api_base_url in the settings to download."
            )
        with self._start_lock:
            return self._start(version)

    def _start(self, version: Version | None) -> DownloadStatus:
        if self._stop.is_set():
            raise DownloadStopped(
                "The station is stopping; downloads carry on when it starts again."
            )
        if self._worker is not None and self._worker.is_alive():
            raise DownloadError(
                "A download is already running; wait for it or cancel it."
            )
        try:
            release = self._release_of(version)
        except PortalOffline as exc:
            assert self.client is not None
            self._update(offline_since=self.client.offline_since, error=exc.message)
            raise
        if release.version in self.library.versions():
            log.info("%s is already in the library", release.version)
            size = release.file_size
            held = DownloadStatus(release.version, DownloadState.DONE, size, size)
            self._update(download=held)
            return held
        name = release.version.image_name
        # A started download has reserved its whole size (posix_fallocate).
        resuming = self.downloader.partial(name, release.file_size) > 0
        self.library.check_space(
            release.version,
            release.file_size,
            self.staging_dir,
            already=release.file_size if resuming else 0,
        )

        started = DownloadStatus(
            release.version, DownloadState.RUNNING, total=release.file_size
        )
        self._cancel = threading.Event()
        worker = threading.Thread(
            target=self._run, args=(release,), name=f"download {name}", daemon=True
        )
        self._worker = worker
        self._update(download=started)
        worker.start()
        return started

    def cancel(self) -> None:
        """Ask the running download to stop; the downloader removes its partial file."""
        self._cancel.set()

    def shutdown(self) -> None:
        """Stop the running download for good, keeping its partial file.

        For a station that stops: the download ends as STOPPED, and the next
        start carries on from its last checkpoint. Later starts are refused;
        `wait()` waits for the worker to end.
        """
        self._stop.set()

    def wait(self, timeout: float | None = None) -> UpdateStatus:
        """Wait for the running download (if any) to end, at most `timeout` s."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
        return self.status()

    def _release_of(self, version: Version | None) -> Release:
        assert self.client is not None
        if version is None:
            latest = self.client.latest(holding=self.library.versions())
            if latest is None:
                raise PortalError(
                    "No release has been published yet; nothing to download.",
                    code="no_published_release",
                )
            self._update(latest=latest, offline_since=None)
            return latest
        return self.client.release(version)

    def _run(self, release: Release) -> None:
        version = release.version
        log.info("download of %s started (%d bytes)", version, release.file_size)
        try:
            staged = self.downloader.download(
                version.image_name,
                lambda: self._fresh_url(version),
                release.file_size,
                release.sha256,
                progress=self._on_progress,
                cancel=self._cancel,
                stop=self._stop,
            )
            self.library.add(staged, version, release.sha256)
        except DownloadCancelled as exc:
            log.info("download of %s cancelled", version)
            self._end(DownloadState.CANCELLED, exc.message)
        except DownloadStopped as exc:
            log.info("download of %s stopped with the station", version)
            self._end(DownloadState.STOPPED, exc.message)
        except PortalOffline as exc:
            assert self.client is not None
            self._end(DownloadState.FAILED, exc.message)
            self._update(offline_since=self.client.offline_since)
        except KioskError as exc:
            log.error("download of %s failed: %s", version, exc.message)
            self._end(DownloadState.FAILED, exc.message)
        except Exception:
            log.exception("download of %s failed unexpectedly", version)
            self._end(
                DownloadState.FAILED,
                "The download stopped because of an internal error; "
                "see logs/app_errors.log and try again.",
            )
        else:
            log.info("download of %s verified and added to the library", version)
            self._discard(version.image_name)
            self._end(DownloadState.DONE, "")

    def _fresh_url(self, version: Version) -> str:
        assert self.client is not None
        return self.client.download_url(version).url

    def _on_progress(self, progress: Progress) -> None:
        with self._lock:
            current = self._status.download
        if current is None:
            return
        self._update(
            download=replace(
                current,
                done=progress.done,
                total=progress.total,
                speed=progress.speed,
                eta=progress.eta,
                resumed_from=progress.resumed_from,
            )
        )

    def _end(self, state: DownloadState, error: str) -> None:
        with self._lock:
            current = self._status.download
        if current is not None:
            self._update(
                download=replace(current, state=state, error=error, eta=None),
                local=tuple(self.library.versions()),
            )

    def _discard(self, name: str) -> None:
        try:
            self.downloader.discard(name)
        except (OSError, KioskError) as exc:
            log.warning("could not tidy the staging of %s: %s", name, exc)

    def _update(self, **changes: object) -> UpdateStatus:
        with self._lock:
            self._status = replace(self._status, **changes)  # type: ignore[arg-type]
            status = self._status
        for listener in list(self._listeners):
            try:
                listener(status)
            except Exception:
                log.exception("an update listener failed")
        return status
