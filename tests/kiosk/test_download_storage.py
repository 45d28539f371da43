"""A full or read-only staging folder is a StorageError and leaves no file."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kiosk.downloads import Progress
from kiosk.errors import StorageError
from tests.kiosk.conftest import DOWNLOAD_IMAGE, DOWNLOAD_SHA256, fast_downloader
from tests.kiosk.faulty_server import FaultyServer

NAME = "FlashingApp_v1.2.3.img"
SIZE = len(DOWNLOAD_IMAGE)


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


@pytest.fixture
def download_tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Mount 8 MiB tmpfs folders (root only); every one is unmounted after."""
    mounted: list[Path] = []

    def mount(options: str = "size=8m") -> Path:
        folder = tmp_path / f"tmpfs{len(mounted)}"
        folder.mkdir()
        result = run("mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder))
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        run("umount", str(folder))


def test_a_full_disk_is_a_storage_error_before_any_download(
    faulty_server: FaultyServer, download_tmpfs: Callable[..., Path]
):
    disk = download_tmpfs()
    (disk / "other image").write_bytes(bytes(6 * 1024 * 1024))
    staging = disk / "download_staging"

    with pytest.raises(StorageError) as caught:
        fast_downloader(staging).download(
            NAME, faulty_server.url, SIZE, DOWNLOAD_SHA256
        )

    assert "Not enough space" in caught.value.message
    assert list(staging.iterdir()) == []
    assert faulty_server.seen == []


def test_a_disk_that_fills_up_midway_is_a_storage_error(
    faulty_server: FaultyServer, download_tmpfs: Callable[..., Path]
):
    disk = download_tmpfs()
    staging = disk / "download_staging"
    faulty_server.plan.rate = 1024 * 1024

    def fill_the_disk(event: Progress) -> None:
        filler = disk / "another program's file"
        if event.done and not filler.exists():
            stats = os.statvfs(disk)
            filler.write_bytes(bytes(stats.f_bavail * stats.f_frsize))

    with pytest.raises(StorageError) as caught:
        fast_downloader(staging).download(
            NAME, faulty_server.url, SIZE, DOWNLOAD_SHA256, progress=fill_the_disk
        )

    assert "Not enough space" in caught.value.message
    assert list(staging.iterdir()) == []


def test_a_read_only_staging_folder_is_a_storage_error(
    faulty_server: FaultyServer, download_tmpfs: Callable[..., Path]
):
    disk = download_tmpfs("size=8m,ro")

    with pytest.raises(StorageError) as caught:
        fast_downloader(disk / "download_staging").download(
            NAME, faulty_server.url, SIZE, DOWNLOAD_SHA256
        )

    assert "cannot be written" in caught.value.message
    assert list(disk.iterdir()) == []


def test_downloads_into_a_tmpfs_that_has_room(
    faulty_server: FaultyServer, download_tmpfs: Callable[..., Path]
):
    staging = download_tmpfs() / "download_staging"

    path = fast_downloader(staging).download(
        NAME, faulty_server.url, SIZE, DOWNLOAD_SHA256
    )

    assert path.read_bytes() == DOWNLOAD_IMAGE
