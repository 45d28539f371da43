"""Real image files for library tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

from kiosk.library import Library
from kiosk.versions import Version


def stage(folder: Path, version: str, data: bytes | None = None) -> tuple[Path, str]:
    """A verified file as the downloader leaves it; returns its path and SHA-256."""
    folder.mkdir(parents=True, exist_ok=True)
    body = data if data is not None else f"image {version}\n".encode() * 100
    path = folder / f"FlashingApp_{version}.img"
    path.write_bytes(body)
    return path, hashlib.sha256(body).hexdigest()


def add(library: Library, staging: Path, version: str) -> None:
    path, sha256 = stage(staging, version)
    library.add(path, Version.parse(version), sha256)


def names(library: Library) -> list[str]:
    return [str(v) for v in library.versions()]
