import hashlib
import os
import subprocess
import sys
import threading
import time

import pytest

from kiosk.errors import LibraryError
from kiosk.library import QUARANTINE_DAYS, Library, human_size
from kiosk.versions import Version
from tests.kiosk.library_files import add, names, stage

V = Version.parse


@pytest.fixture
def library(tmp_path):
    return Library(tmp_path / "recommended", tmp_path / "quarantine", keep=3)


@pytest.fixture
def staging(tmp_path):
    return tmp_path / "staging"


def test_adds_a_verified_file_by_renaming_it(library, staging):
    path, sha256 = stage(staging, "v1.2.3")
    inode = path.stat().st_ino

    image = library.add(path, V("v1.2.3"), sha256)

    assert not path.exists()
    assert image.path == library.folder / "FlashingApp_v1.2.3.img"
    assert image.path.stat().st_ino == inode
    assert image.sha256 == sha256
    checksum = (library.folder / "FlashingApp_v1.2.3.img.sha256").read_text()
    assert checksum == f"{sha256}  FlashingApp_v1.2.3.img\n"


def test_checksum_file_works_with_sha256sum(library, staging):
    add(library, staging, "v1.2.3")

    result = subprocess.run(
        ["sha256sum", "-c", "FlashingApp_v1.2.3.img.sha256"],
        cwd=library.folder,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_lists_images_newest_version_first(library, staging):
    for version in ["v1.9.0", "v1.10.0", "v1.10.0-rc.1"]:
        add(library, staging, version)

    images = library.images()

    assert [str(i.version) for i in images] == ["v1.10.0", "v1.10.0-rc.1", "v1.9.0"]
    assert all(i.size == i.path.stat().st_size for i in images)


def test_keeps_newest_three_versions(library, staging):
    for version in ["v1.0.0", "v1.1.0", "v1.2.0", "v1.10.0"]:
        add(library, staging, version)

    assert names(library) == ["v1.10.0", "v1.2.0", "v1.1.0"]
    assert sorted(p.name for p in library.folder.iterdir()) == sorted(
        f"FlashingApp_{v}.img{suffix}"
        for v in ["v1.10.0", "v1.2.0", "v1.1.0"]
        for suffix in ["", ".sha256"]
    )


def test_an_older_version_added_on_purpose_stays(library, staging):
    for version in ["v2.0.0", "v2.1.0", "v2.2.0"]:
        add(library, staging, version)

    add(library, staging, "v1.0.0")

    assert names(library) == ["v2.2.0", "v2.1.0", "v1.0.0"]


def test_adding_the_same_version_again_replaces_it(library, staging):
    add(library, staging, "v1.0.0")
    path, sha256 = stage(staging, "v1.0.0", b"rebuilt")

    library.add(path, V("v1.0.0"), sha256)

    assert names(library) == ["v1.0.0"]
    assert library.images()[0].sha256 == sha256


def test_an_image_being_read_is_pruned_after_the_lease(library, staging):
    for version in ["v1.0.0", "v1.1.0", "v1.2.0"]:
        add(library, staging, version)

    with library.reading(V("v1.0.0")) as image:
        add(library, staging, "v1.3.0")
        assert library.in_use(V("v1.0.0"))
        assert image.path.read_bytes().startswith(b"image v1.0.0")
        assert names(library) == ["v1.3.0", "v1.2.0", "v1.1.0", "v1.0.0"]

    assert names(library) == ["v1.3.0", "v1.2.0", "v1.1.0"]
    assert not library.in_use(V("v1.0.0"))


def test_a_lease_in_another_process_also_stops_pruning(library, staging):
    for version in ["v1.0.0", "v1.1.0", "v1.2.0"]:
        add(library, staging, version)
    holder = _hold_lock_in_child(library.folder / "FlashingApp_v1.0.0.img")
    try:
        add(library, staging, "v1.3.0")
        assert "v1.0.0" in names(library)
    finally:
        holder.communicate(timeout=30)  # closing stdin lets the child exit

    library.prune()

    assert names(library) == ["v1.3.0", "v1.2.0", "v1.1.0"]


def _hold_lock_in_child(path):
    code = (
        "import fcntl, sys\n"
        "f = open(sys.argv[1], 'rb')\n"
        "fcntl.flock(f.fileno(), fcntl.LOCK_SH)\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "locked\n"
    return child


def test_reading_a_missing_version_says_to_download_it(library):
    with (
        pytest.raises(LibraryError, match="not on this station; download it"),
        library.reading(V("v9.9.9")),
    ):
        pass


def test_verify_reports_chunked_progress(library, staging):
    data = os.urandom(9 * 1024 * 1024 + 5)
    path, sha256 = stage(staging, "v1.0.0", data)
    library.add(path, V("v1.0.0"), sha256)
    seen = []

    image = library.verify(V("v1.0.0"), lambda done, total: seen.append((done, total)))

    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert len(seen) == 3
    assert seen[-1] == (len(data), len(data))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_a_corrupted_image_goes_to_quarantine(library, staging):
    add(library, staging, "v1.0.0")
    image = library.images()[0]
    with image.path.open("r+b") as handle:
        handle.write(b"X")

    with pytest.raises(LibraryError, match=r"damaged .* moved to quarantine"):
        library.verify(V("v1.0.0"))

    assert library.versions() == []
    assert sorted(p.name for p in library.quarantine_dir.iterdir()) == [
        "FlashingApp_v1.0.0.img",
        "FlashingApp_v1.0.0.img.sha256",
    ]
    assert not library.quarantine_dir.is_relative_to(library.folder)


def test_clean_removes_orphans_and_keeps_verified_images(library, staging):
    add(library, staging, "v1.0.0")
    folder = library.folder
    (folder / ".incoming-FlashingApp_v1.1.0.img").write_bytes(b"half")
    (folder / "FlashingApp_v1.2.0.img").write_bytes(b"no checksum")
    (folder / "FlashingApp_v1.3.0.img.sha256").write_text("ab" * 32 + "  x\n")
    (folder / "notes.txt").write_text("foreign")
    (folder / "FlashingApp_v1.4.0.img").write_bytes(b"bad checksum file")
    (folder / "FlashingApp_v1.4.0.img.sha256").write_text("not a digest\n")

    cleaned = library.clean()

    assert sorted(p.name for p in folder.iterdir()) == [
        "FlashingApp_v1.0.0.img",
        "FlashingApp_v1.0.0.img.sha256",
    ]
    assert sorted(p.name for p in library.quarantine_dir.iterdir()) == [
        "FlashingApp_v1.2.0.img",
        "FlashingApp_v1.4.0.img",
        "notes.txt",
    ]
    assert len(cleaned) == 6


def test_clean_empties_quarantine_of_what_has_been_there_two_weeks(library, staging):
    long_ago = time.time() - QUARANTINE_DAYS * 86400 - 60
    add(library, staging, "v1.0.0")
    foreign = library.folder / "notes.txt"
    foreign.write_text("foreign")
    os.utime(foreign, (long_ago, long_ago))
    library.clean()  # quarantined now, though the file itself is older
    quarantined = library.quarantine_dir / "notes.txt"
    old = library.quarantine_dir / "FlashingApp_v0.9.0.img"
    old.write_bytes(b"damaged long ago")
    os.utime(old, (long_ago, long_ago))

    library.clean()

    assert sorted(p.name for p in library.quarantine_dir.iterdir()) == ["notes.txt"]
    assert time.time() - quarantined.stat().st_mtime < 60
    assert library.versions() == [V("v1.0.0")]


def test_unverifiable_images_are_not_listed(library, staging):
    add(library, staging, "v1.0.0")
    (library.folder / "FlashingApp_v1.1.0.img").write_bytes(b"no checksum")

    assert names(library) == ["v1.0.0"]
    assert library.get(V("v1.1.0")) is None


def test_concurrent_leases_count_separately(library, staging):
    add(library, staging, "v1.0.0")
    entered = threading.Barrier(2)
    release = threading.Event()

    def flash():
        with library.reading(V("v1.0.0")):
            entered.wait(10)
            release.wait(10)

    worker = threading.Thread(target=flash)
    worker.start()
    with library.reading(V("v1.0.0")):
        entered.wait(10)
    assert library.in_use(V("v1.0.0"))
    release.set()
    worker.join(10)

    assert not library.in_use(V("v1.0.0"))


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (3_100_000, "3.1 MB"), (24_000_000_000, "24.0 GB")],
)
def test_sizes_read_in_decimal_units(size, text):
    assert human_size(size) == text
