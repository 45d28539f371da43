"""Several drives flash at once; one failing drive leaves the others alone."""

from __future__ import annotations

import threading
from pathlib import Path

from kiosk.flashing import Flasher, FlashResult, Progress
from tests.kiosk.drive_fixtures import loop_target, make_image, sha256_of, tiny_tmpfs

MiB = 1024 * 1024
SIZE = 12 * MiB + 4097


def finished(run_result: FlashResult | None) -> FlashResult:
    assert run_result is not None, "the flash did not end in time"
    return run_result


def test_three_drives_at_once_with_one_running_out_of_space(tmp_path: Path) -> None:
    image, digest = make_image(tmp_path, SIZE)
    flasher = Flasher(block_size=MiB, progress_interval=0)
    phases: dict[str, set[str]] = {}
    lock = threading.Lock()

    def record(progress: Progress) -> None:
        with lock:
            phases.setdefault(progress.target, set()).add(progress.phase)

    with (
        loop_target(tmp_path, 16 * MiB) as device,
        tiny_tmpfs(tmp_path / "tiny", 4 * MiB) as tiny,
    ):
        targets = [device, str(tmp_path / "file.img"), str(tiny / "full.img")]
        runs = [
            flasher.start(target, image, digest, SIZE, progress=record)
            for target in targets
        ]
        results = [finished(run.wait(60)) for run in runs]
        device_digest = sha256_of(device, SIZE)

    loop_result, file_result, full_result = results
    assert loop_result.status == "passed", loop_result.error
    assert file_result.status == "passed", file_result.error
    assert full_result.status == "failed"
    assert "ran out of space" in full_result.error
    assert device_digest == digest
    assert phases[device] == {"writing", "verifying", "done"}
    assert "done" not in phases[str(tiny / "full.img")]


def test_a_crashing_progress_display_does_not_fail_the_drive(tmp_path: Path) -> None:
    image, digest = make_image(tmp_path, SIZE)

    def broken_display(progress: Progress) -> None:
        raise RuntimeError("widget gone")

    run = Flasher(block_size=MiB).start(
        tmp_path / "a.img", image, digest, SIZE, progress=broken_display
    )

    assert finished(run.wait(60)).status == "passed"


def test_cancelling_one_run_leaves_the_other_running(tmp_path: Path) -> None:
    image, digest = make_image(tmp_path, SIZE)
    gate = threading.Event()

    def hold_until_released(progress: Progress) -> None:
        gate.wait(30)

    flasher = Flasher(block_size=MiB, progress_interval=0)
    held = flasher.start(
        tmp_path / "held.img", image, digest, SIZE, progress=hold_until_released
    )
    free = flasher.start(tmp_path / "free.img", image, digest, SIZE)
    held.cancel()
    gate.set()

    assert finished(held.wait(60)).status == "cancelled"
    assert finished(free.wait(60)).status == "passed"
