"""Flashing writes the image, reads it back from the medium, and says so."""

from __future__ import annotations

import threading
from pathlib import Path

from kiosk.flashing import Flasher, Progress
from tests.kiosk.drive_fixtures import loop_target, make_image, sha256_of

MiB = 1024 * 1024
# Not a multiple of the 4096-byte alignment: the tail takes the buffered path.
ODD_SIZE = 9 * MiB + 12345


def small_flasher(**options: object) -> Flasher:
    """Blocks of 1 MiB so that small images still cross many blocks."""
    return Flasher(block_size=MiB, progress_interval=0, **options)  # type: ignore[arg-type]


def test_flashes_an_image_file_and_reads_it_back(tmp_path: Path) -> None:
    image, digest = make_image(tmp_path, ODD_SIZE)
    target = tmp_path / "target.img"

    result = small_flasher().flash(target, image, digest, ODD_SIZE)

    assert result.status == "passed", result.error
    assert result.error == ""
    assert result.bytes_written == ODD_SIZE
    assert result.image_sha256 == result.readback_sha256 == digest
    assert sha256_of(target, ODD_SIZE) == digest
    assert result.started_at <= result.ended_at


def test_flashes_a_loop_device(tmp_path: Path) -> None:
    image, digest = make_image(tmp_path, ODD_SIZE)

    with loop_target(tmp_path, 16 * MiB) as device:
        result = small_flasher().flash(device, image, digest, ODD_SIZE)
        on_device = sha256_of(device, ODD_SIZE)

    assert result.status == "passed", result.error
    assert result.readback_sha256 == on_device == digest


def test_reports_both_phases_then_done(tmp_path: Path) -> None:
    image, digest = make_image(tmp_path, ODD_SIZE)
    seen: list[Progress] = []

    small_flasher().flash(
        tmp_path / "target.img", image, digest, ODD_SIZE, progress=seen.append
    )

    phases = [p.phase for p in seen]
    assert phases.index("writing") < phases.index("verifying") < phases.index("done")
    assert seen[-1].phase == "done" and seen[-1].done_bytes == ODD_SIZE
    writing = [p.done_bytes for p in seen if p.phase == "writing"]
    assert writing == sorted(writing) and writing[-1] == ODD_SIZE
    assert all(p.total_bytes == ODD_SIZE for p in seen)


def test_throttles_progress_by_the_injected_clock(tmp_path: Path) -> None:
    image, digest = make_image(tmp_path, ODD_SIZE)
    seen: list[Progress] = []
    frozen = Flasher(block_size=MiB, progress_interval=60, clock=lambda: 100.0)

    frozen.flash(tmp_path / "target.img", image, digest, ODD_SIZE, progress=seen.append)

    # A frozen clock allows only the forced reports: start and end of each pass.
    assert [(p.phase, p.done_bytes) for p in seen] == [
        ("writing", 0),
        ("writing", ODD_SIZE),
        ("verifying", 0),
        ("verifying", ODD_SIZE),
        ("done", ODD_SIZE),
    ]


def test_runs_the_start_hook_before_the_first_byte(tmp_path: Path) -> None:
    image, digest = make_image(tmp_path, ODD_SIZE)
    target = tmp_path / "target.img"
    existed_at_start: list[bool] = []

    result = small_flasher().flash(
        target,
        image,
        digest,
        ODD_SIZE,
        on_start=lambda: existed_at_start.append(target.exists()),
    )

    assert result.status == "passed"
    assert existed_at_start == [False]


def test_a_failing_start_hook_writes_nothing(tmp_path: Path) -> None:
    image, digest = make_image(tmp_path, ODD_SIZE)
    target = tmp_path / "target.img"

    def broken_flash_log() -> None:
        raise OSError("database is locked")

    result = small_flasher().flash(
        target, image, digest, ODD_SIZE, on_start=broken_flash_log
    )

    assert result.status == "failed"
    assert "flash record could not be written" in result.error
    assert not target.exists()


def test_cancel_stops_the_flash(tmp_path: Path) -> None:
    image, digest = make_image(tmp_path, ODD_SIZE)
    cancel = threading.Event()

    def cancel_after_first_block(progress: Progress) -> None:
        if progress.done_bytes > 0:
            cancel.set()

    result = small_flasher().flash(
        tmp_path / "target.img",
        image,
        digest,
        ODD_SIZE,
        progress=cancel_after_first_block,
        cancel=cancel,
    )

    assert result.status == "cancelled"
    assert "partial image" in result.error
    assert 0 < result.bytes_written < ODD_SIZE


def test_the_same_serial_at_the_end_passes(tmp_path: Path) -> None:
    image, digest = make_image(tmp_path, ODD_SIZE)

    result = small_flasher().flash(
        tmp_path / "target.img",
        image,
        digest,
        ODD_SIZE,
        serial="S6WBNS0T812345A",
        reread_serial=lambda: "S6WBNS0T812345A",
    )

    assert result.status == "passed"
