"""A flash that cannot succeed fails with one plain sentence, never an exception."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from kiosk.flashing import Flasher, Progress
from tests.kiosk.drive_fixtures import (
    loop_device,
    loop_target,
    make_image,
    tiny_tmpfs,
)

MiB = 1024 * 1024
SIZE = 6 * MiB + 777


def small_flasher(**options: object) -> Flasher:
    return Flasher(block_size=MiB, progress_interval=0, **options)  # type: ignore[arg-type]


def corrupt_one_byte(target: str) -> None:
    """Flip a byte on the medium between the write and the verify pass."""
    fd = os.open(target, os.O_RDWR)
    try:
        old = os.pread(fd, 1, 5 * MiB)
        os.pwrite(fd, bytes([old[0] ^ 0xFF]), 5 * MiB)
        os.fsync(fd)
    finally:
        os.close(fd)


def test_read_back_catches_a_file_changed_after_writing(tmp_path: Path) -> None:
    image, digest = make_image(tmp_path, SIZE)

    result = small_flasher(before_verify=corrupt_one_byte).flash(
        tmp_path / "target.img", image, digest, SIZE
    )

    assert result.status == "failed"
    assert "did not give the image" in result.error
    assert result.image_sha256 == digest
    assert result.readback_sha256 not in ("", digest)


def test_read_back_catches_a_loop_device_changed_after_writing(tmp_path: Path) -> None:
    image, digest = make_image(tmp_path, SIZE)

    with loop_target(tmp_path, 8 * MiB) as device:
        result = small_flasher(before_verify=corrupt_one_byte).flash(
            device, image, digest, SIZE
        )

    assert result.status == "failed"
    assert "did not give the image" in result.error


def test_an_image_that_no_longer_matches_its_checksum_fails(tmp_path: Path) -> None:
    image, actual = make_image(tmp_path, SIZE)
    recorded = "0" * 64

    result = small_flasher().flash(tmp_path / "target.img", image, recorded, SIZE)

    assert result.status == "failed"
    assert "no longer matches its checksum" in result.error
    # The drive holds what the image holds; the image itself is to blame.
    assert result.readback_sha256 == result.image_sha256 == actual


def test_a_shorter_image_than_recorded_fails(tmp_path: Path) -> None:
    image, digest = make_image(tmp_path, SIZE)

    result = small_flasher().flash(tmp_path / "target.img", image, digest, SIZE + 1)

    assert result.status == "failed"
    assert "shorter than its recorded size" in result.error


def test_a_swapped_drive_fails(tmp_path: Path) -> None:
    image, digest = make_image(tmp_path, SIZE)

    result = small_flasher().flash(
        tmp_path / "target.img",
        image,
        digest,
        SIZE,
        serial="S6WBNS0T812345A",
        reread_serial=lambda: "S49WNP0N120045K",
    )

    assert result.status == "failed"
    assert "was swapped" in result.error


def test_a_drive_whose_serial_is_gone_at_the_end_fails(tmp_path: Path) -> None:
    image, digest = make_image(tmp_path, SIZE)

    result = small_flasher().flash(
        tmp_path / "target.img",
        image,
        digest,
        SIZE,
        serial="S6WBNS0T812345A",
        reread_serial=lambda: None,
    )

    assert result.status == "failed"
    assert "could not be read again" in result.error


def test_a_too_small_loop_device_fails_before_writing(tmp_path: Path) -> None:
    image, digest = make_image(tmp_path, SIZE)

    with loop_target(tmp_path, 4 * MiB) as device:
        result = small_flasher().flash(device, image, digest, SIZE)

    assert result.status == "failed"
    assert "too small for this image" in result.error
    assert result.bytes_written == 0


def test_a_read_only_loop_device_is_not_writable(tmp_path: Path) -> None:
    image, digest = make_image(tmp_path, SIZE)
    backing = tmp_path / "ro.backing"
    backing.write_bytes(bytes(8 * MiB))

    with loop_device(backing, read_only=True) as device:
        result = small_flasher().flash(device, image, digest, SIZE)

    assert result.status == "failed"
    assert "cannot be written (write-protected" in result.error


def test_a_full_file_system_is_out_of_space(tmp_path: Path) -> None:
    image, digest = make_image(tmp_path, SIZE)

    with tiny_tmpfs(tmp_path / "tiny", 2 * MiB) as folder:
        result = small_flasher().flash(folder / "target.img", image, digest, SIZE)

    assert result.status == "failed"
    assert "ran out of space" in result.error
    assert result.bytes_written < SIZE


def test_a_target_in_a_missing_folder_fails_plainly(tmp_path: Path) -> None:
    image, digest = make_image(tmp_path, SIZE)

    result = small_flasher().flash(tmp_path / "gone" / "t.img", image, digest, SIZE)

    assert result.status == "failed"
    assert "was not found (No such file or directory)" in result.error


def test_a_device_whose_store_fills_up_fails_plainly(tmp_path: Path) -> None:
    image, digest = make_image(tmp_path, SIZE)

    # A loop device over a sparse file on a tmpfs too small for it fails
    # mid-write, as a drive that lies about its capacity does.
    with (
        tiny_tmpfs(tmp_path / "tiny", 2 * MiB) as folder,
        loop_target(folder, 8 * MiB) as device,
    ):
        result = small_flasher().flash(device, image, digest, SIZE)

    assert result.status == "failed"
    assert f"{device} stopped taking data after" in result.error
    assert "it may be counterfeit or failing" in result.error
    assert 0 < result.bytes_written < SIZE


def test_a_device_whose_size_drops_to_zero_midway_was_unplugged(
    tmp_path: Path,
) -> None:
    # When a USB disk goes, the kernel sets its capacity to 0 and writes then
    # fail with ENOSPC; shrinking a loop device's file does the same.
    image, digest = make_image(tmp_path, SIZE)
    backing = tmp_path / "pulled.backing"

    def pull_out(progress: Progress) -> None:
        if progress.phase == "writing" and progress.done_bytes > 0:
            os.truncate(backing, 0)
            subprocess.run(["losetup", "-c", progress.target], timeout=30, check=True)

    with open(backing, "wb") as stream:
        stream.truncate(8 * MiB)
    with loop_device(backing) as device:
        result = small_flasher().flash(device, image, digest, SIZE, progress=pull_out)

    assert result.status == "failed"
    assert "it was unplugged" in result.error
    assert "counterfeit" not in result.error


def test_a_target_gone_before_verify_was_unplugged(tmp_path: Path) -> None:
    image, digest = make_image(tmp_path, SIZE)

    result = small_flasher(before_verify=os.unlink).flash(
        tmp_path / "target.img", image, digest, SIZE
    )

    assert result.status == "failed"
    assert "disappeared during the flash" in result.error
