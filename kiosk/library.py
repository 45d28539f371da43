"""The recommended/ folder: verified images, each with its SHA-256 beside it.

An image enters by an atomic rename after its SHA-256 matched; the file and
the folder are fsynced so a power cut leaves either the old or the new state.
`FlashingApp_v1.2.3.img.sha256` holds the digest in `sha256sum` format, so an
operator can check a folder with `sha256sum -c`.

A flash holds a lease (`with library.reading(version)`), which is a shared
flock on the image: pruning takes the exclusive lock without waiting, so an
image being read, by this process or another, is skipped and pruned later.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kiosk.errors import LibraryError, StorageError
from kiosk.versions import Version, from_image_name

__all__ = ["Image", "Library", "human_size"]

log = logging.getLogger(__name__)

CHECKSUM_SUFFIX = ".sha256"
TEMP_PREFIX = ".incoming-"
DEFAULT_MARGIN = 512 * 1000 * 1000  # room for logs and the database to grow
QUARANTINE_DAYS = 14  # long enough to investigate, short enough to free the disk
_CHUNK = 4 * 1024 * 1024
_CHECKSUM_LINE = re.compile(r"([0-9a-f]{64})  (\S+)\n?")


@dataclass(frozen=True)
class Image:
    """A verified image in recommended/."""

    version: Version
    path: Path
    size: int
    sha256: str


def human_size(size: float) -> str:
    """Bytes as `24.0 GB` or `3.1 MB` (decimal units, as disks are sold)."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{int(size)} B"


class Library:
    """The images a station holds; the only code that changes recommended/."""

    def __init__(
        self,
        recommended_dir: Path,
        quarantine_dir: Path,
        *,
        keep: int = 3,
        margin: int = DEFAULT_MARGIN,
    ) -> None:
        self.folder = recommended_dir
        self.quarantine_dir = quarantine_dir
        self.keep = keep
        self.margin = margin
        self._lock = threading.Lock()
        self._leases: dict[Version, int] = {}
        self._prune_pending = False

    def images(self) -> list[Image]:
        """The images with a well-formed checksum file, newest version first."""
        found: list[Image] = []
        for version, path in self._image_files():
            sha256 = self._recorded_sha256(path)
            if sha256 is not None:
                found.append(Image(version, path, path.stat().st_size, sha256))
        return sorted(found, key=lambda image: image.version, reverse=True)

    def versions(self) -> list[Version]:
        return [image.version for image in self.images()]

    def get(self, version: Version) -> Image | None:
        path = self.folder / version.image_name
        sha256 = self._recorded_sha256(path) if path.is_file() else None
        if sha256 is None:
            return None
        return Image(version, path, path.stat().st_size, sha256)

    def in_use(self, version: Version) -> bool:
        """True while this process holds a lease on the image."""
        with self._lock:
            return self._leases.get(version, 0) > 0

    def add(self, staged: Path, version: Version, sha256: str) -> Image:
        """Move a verified file in as the image of `version`, then prune."""
        if not staged.is_file():
            raise LibraryError(
                f"The downloaded file for {version} is missing; download it again."
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / version.image_name
        checksum = _checksum_path(target)

        # The checksum goes first: a crash then leaves a checksum without an
        # image, which clean() removes, never an image nobody can verify.
        self._write_atomically(checksum, f"{sha256}  {version.image_name}\n")
        try:
            self._move_in(staged, target)
        except StorageError:
            checksum.unlink(missing_ok=True)
            raise
        _fsync_dir(self.folder)
        image = Image(version, target, target.stat().st_size, sha256)
        log.info("image %s added to %s", version, self.folder)
        self.prune(protect=version)
        return image

    def prune(self, *, protect: Version | None = None) -> list[Version]:
        """Delete the oldest images beyond `keep`; images being read are skipped."""
        versions = self.versions()
        others = [v for v in versions if v != protect]
        room = max(0, self.keep - (1 if protect in versions else 0))
        self._prune_pending = False
        removed: list[Version] = []
        for version in others[room:]:
            if self._remove(version):
                removed.append(version)
            else:
                self._prune_pending = True
        if removed:
            _fsync_dir(self.folder)
        return removed

    @contextlib.contextmanager
    def reading(self, version: Version) -> Iterator[Image]:
        """Hold `version` in recommended/ while a flash reads it."""
        path = self.folder / version.image_name
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise LibraryError(
                f"{version} is not on this station; download it first."
            ) from None
        with handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
            image = self.get(version)
            if image is None or os.fstat(handle.fileno()).st_ino != _inode(path):
                raise LibraryError(
                    f"{version} was just removed from this station; download it again."
                )
            with self._lock:
                self._leases[version] = self._leases.get(version, 0) + 1
            try:
                yield image
            finally:
                with self._lock:
                    self._leases[version] -= 1
                    if not self._leases[version]:
                        del self._leases[version]
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        if self._prune_pending:
            self.prune()  # an image skipped while it was read may go now

    def check_space(
        self, version: Version, size: int, staging_dir: Path, *, already: int = 0
    ) -> None:
        """Refuse a download that cannot fit or whose folders are not writable."""
        folders = [staging_dir, self.folder]
        for folder in folders:
            _check_writable(folder)
        devices: dict[int, Path] = {}
        for folder in folders:
            devices.setdefault(folder.stat().st_dev, folder)
        for index, folder in enumerate(devices.values()):
            # The staging disk holds the partial download already.
            needed = size + self.margin - (already if index == 0 else 0)
            free = shutil.disk_usage(folder).free
            if free < needed:
                log.warning(
                    "no space for %s on %s: need %d, free %d",
                    version,
                    folder,
                    needed,
                    free,
                )
                raise StorageError(
                    f"Not enough space for {version}: {human_size(needed)} needed, "
                    f"{human_size(free)} free on {_mount_point(folder)}. "
                    "Delete old images or free space on that disk."
                )

    def verify(
        self,
        version: Version,
        progress: Callable[[int, int], None] | None = None,
    ) -> Image:
        """Hash the image again; a mismatch moves it to quarantine/ and raises."""
        with self.reading(version) as image:
            actual = _hash_file(image.path, image.size, progress)
        if actual == image.sha256:
            log.info("image %s verified", version)
            return image
        log.error(
            "image %s is corrupt: expected %s, got %s", version, image.sha256, actual
        )
        self._quarantine(image.path)
        self._quarantine(_checksum_path(image.path))
        _fsync_dir(self.folder)
        raise LibraryError(
            f"The image {version} was damaged on this station's disk and was moved "
            "to quarantine; download it again."
        )

    def clean(self) -> list[str]:
        """Tidy recommended/ at start: temp files, unverifiable and foreign files.

        Quarantined files older than `QUARANTINE_DAYS` are deleted too: they
        were kept for someone to look at, not to fill the disk for good.
        """
        self._expire_quarantine()
        if not self.folder.is_dir():
            return []
        cleaned: list[str] = []
        for path in sorted(self.folder.iterdir()):
            action = self._orphan_action(path)
            if action is None:
                continue
            log.warning("recommended/ holds %s; %s", path.name, action)
            if action == "deleted":
                path.unlink()
            else:
                self._quarantine(path)
            cleaned.append(path.name)
        if cleaned:
            _fsync_dir(self.folder)
        return cleaned

    def _orphan_action(self, path: Path) -> str | None:
        name = path.name
        if not path.is_file() or path.is_symlink():
            return None if path.is_dir() else "quarantined"
        if name.startswith(TEMP_PREFIX):
            return "deleted"
        if name.endswith(CHECKSUM_SUFFIX):
            image = self.folder / name.removesuffix(CHECKSUM_SUFFIX)
            return (
                None if from_image_name(image.name) and image.is_file() else "deleted"
            )
        if from_image_name(name) is None:
            return "quarantined"
        return None if self._recorded_sha256(path) else "quarantined"

    def _image_files(self) -> Iterator[tuple[Version, Path]]:
        if not self.folder.is_dir():
            return
        for path in self.folder.iterdir():
            version = from_image_name(path.name)
            if version is not None and path.is_file() and not path.is_symlink():
                yield version, path

    def _recorded_sha256(self, image: Path) -> str | None:
        try:
            text = _checksum_path(image).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError):
            return None
        found = _CHECKSUM_LINE.fullmatch(text)
        if found is None or found.group(2) != image.name:
            return None
        return found.group(1)

    def _remove(self, version: Version) -> bool:
        path = self.folder / version.image_name
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            return False
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("image %s is being read; it will be pruned later", version)
                return False
            path.unlink()
            _checksum_path(path).unlink(missing_ok=True)
        log.info("image %s pruned (keeping %d versions)", version, self.keep)
        return True

    def _move_in(self, staged: Path, target: Path) -> None:
        _fsync_file(staged)
        try:
            os.replace(staged, target)
            return
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise _storage_error(target.parent, exc) from exc
        # Staging lives on another disk: copy beside the target, then rename.
        temp = target.with_name(f"{TEMP_PREFIX}{target.name}")
        try:
            shutil.copyfile(staged, temp)
            _fsync_file(temp)
            os.replace(temp, target)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise _storage_error(target.parent, exc) from exc
        staged.unlink()

    def _write_atomically(self, path: Path, text: str) -> None:
        temp = path.with_name(f"{TEMP_PREFIX}{path.name}")
        try:
            with temp.open("w", encoding="ascii") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, path)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise _storage_error(path.parent, exc) from exc

    def _quarantine(self, path: Path) -> None:
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        # One copy per name is enough to investigate; older ones are replaced.
        moved = self.quarantine_dir / path.name
        shutil.move(path, moved)
        try:
            os.utime(moved)  # its age in quarantine starts now
        except OSError as exc:
            log.warning("could not date %s in quarantine: %s", moved, exc)
        log.warning("%s moved to %s", path.name, self.quarantine_dir)

    def _expire_quarantine(self) -> None:
        oldest = time.time() - QUARANTINE_DAYS * 86400
        try:
            entries = list(self.quarantine_dir.iterdir())
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("could not look into %s: %s", self.quarantine_dir, exc)
            return
        for path in entries:
            try:
                if path.is_file() and path.stat().st_mtime < oldest:
                    path.unlink()
                    log.warning(
                        "deleted %s, in quarantine for more than %d days",
                        path.name,
                        QUARANTINE_DAYS,
                    )
            except OSError as exc:
                log.warning("could not delete %s from quarantine: %s", path, exc)


def _checksum_path(image: Path) -> Path:
    return image.with_name(image.name + CHECKSUM_SUFFIX)


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def _hash_file(
    path: Path, size: int, progress: Callable[[int, int], None] | None
) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    done = 0
    with path.open("rb", buffering=0) as source:
        while count := source.readinto(buffer):
            digest.update(view[:count])
            done += count
            if progress is not None:
                progress(done, size)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError as exc:
        raise _storage_error(folder, exc) from exc
    if read_only or not os.access(folder, os.W_OK):
        log.warning("%s is not writable (read-only=%s)", folder, read_only)
        raise StorageError(
            f"Cannot write to {folder}"
            + (" (the disk is mounted read-only)" if read_only else "")
            + "; check the disk and its permissions."
        )


def _storage_error(folder: Path, exc: OSError) -> StorageError:
    log.error("storage error in %s: %s", folder, exc)
    if exc.errno == errno.ENOSPC:
        return StorageError(
            f"The disk of {folder} is full; delete old images or free space."
        )
    return StorageError(
        f"Cannot write to {folder} ({exc.strerror or exc}); "
        "check the disk and its permissions."
    )


def _mount_point(folder: Path) -> Path:
    path = folder.resolve()
    while not os.path.ismount(path):
        path = path.parent
    return path
