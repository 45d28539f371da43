"""Disk space and read-only folders, on small tmpfs mounts made for each test."""

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kiosk.errors import StorageError
from kiosk.library import Library
from kiosk.versions import Version
from tests.kiosk.library_files import names, stage

MB = 1_000_000


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mount small tmpfs folders (root only); all are unmounted afterwards."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        folder = tmp_path / f"tmpfs{len(mounted)}"
        folder.mkdir()
        result = _run(
            "mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        _run("umount", str(folder))


def test_refuses_a_download_that_does_not_fit_naming_the_numbers(tmpfs):
    disk = tmpfs("8m")
    library = Library(disk / "recommended", disk / "quarantine", margin=MB)

    with pytest.raises(StorageError) as caught:
        library.check_space(Version.parse("v1.2.3"), 10 * MB, disk / "staging")

    assert caught.value.message.startswith(
        f"Not enough space for v1.2.3: 11.0 MB needed, 8.4 MB free on {disk}."
    )


def test_accepts_a_download_that_fits(tmpfs):
    disk = tmpfs("8m")
    library = Library(disk / "recommended", disk / "quarantine", margin=MB)

    library.check_space(Version.parse("v1.2.3"), 5 * MB, disk / "staging")


def test_counts_the_part_already_downloaded(tmpfs):
    disk = tmpfs("8m")
    library = Library(disk / "recommended", disk / "quarantine", margin=MB)
    version = Version.parse("v1.2.3")

    with pytest.raises(StorageError):
        library.check_space(version, 10 * MB, disk / "staging")
    library.check_space(version, 10 * MB, disk / "staging", already=4 * MB)


def test_checks_the_library_disk_when_staging_is_elsewhere(tmpfs, tmp_path):
    library_disk = tmpfs("4m")
    library = Library(library_disk / "recommended", tmp_path / "q", margin=MB)

    with pytest.raises(StorageError, match=f"free on {library_disk}"):
        library.check_space(Version.parse("v1.2.3"), 5 * MB, tmp_path / "staging")


def test_refuses_a_read_only_folder(tmpfs):
    disk = tmpfs("8m")
    (disk / "recommended").mkdir()
    (disk / "staging").mkdir()
    result = _run("mount", "-o", "remount,ro", str(disk))
    assert result.returncode == 0, result.stderr
    library = Library(disk / "recommended", disk / "quarantine", margin=MB)

    with pytest.raises(StorageError, match="mounted read-only"):
        library.check_space(Version.parse("v1.2.3"), MB, disk / "staging")


def test_adds_across_disks_by_copying_then_renaming(tmpfs, tmp_path):
    library_disk = tmpfs("8m")
    library = Library(library_disk / "recommended", tmp_path / "q")
    path, sha256 = stage(tmp_path / "staging", "v1.2.3")

    library.add(path, Version.parse("v1.2.3"), sha256)

    assert names(library) == ["v1.2.3"]
    assert not path.exists()


def test_a_full_library_disk_leaves_no_partial_image(tmpfs, tmp_path):
    library_disk = tmpfs("4m")
    library = Library(library_disk / "recommended", tmp_path / "q")
    path, sha256 = stage(tmp_path / "staging", "v1.2.3", b"x" * 6 * MB)

    with pytest.raises(StorageError, match="full"):
        library.add(path, Version.parse("v1.2.3"), sha256)

    assert path.exists()
    assert list(library.folder.iterdir()) == []
