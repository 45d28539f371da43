"""Flash jobs tie drives, serials, the image library, flashing and the log.

Targets are real loop devices. smartctl cannot identify a loop device, so a
stand-in smartctl replays a recorded USB drive's answer (tests/kiosk/smartctl).
"""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.db import open_database
from kiosk.flashing import Flasher
from kiosk.flashjobs import FlashJobs
from kiosk.flashlog import FlashLog, Status
from kiosk.library import Library
from kiosk.versions import Version
from tests.kiosk.drive_fixtures import (
    install_smartctl_stand_in,
    loop_target,
    make_image,
    recording,
)

VERSION = Version.parse("v1.2.3")
SIZE = 8 * 2**20 + 4096 * 3  # an unaligned tail goes through the buffered path
T7_SERIAL = "S6WBNS0T812345A"


@pytest.fixture
def station(tmp_path):
    library = Library(tmp_path / "recommended", tmp_path / "quarantine")
    image, digest = make_image(tmp_path, SIZE)
    library.add(image, VERSION, digest)
    flash_log = FlashLog(open_database(tmp_path / "kiosk.sqlite3"), "Station 3")
    return library, flash_log, tmp_path


@pytest.fixture
def t7(tmp_path, monkeypatch):
    """smartctl answers as for a Samsung T7 behind an ASMedia bridge."""
    return install_smartctl_stand_in(
        tmp_path / "smartctl", monkeypatch, output=recording("samsung_t7_asmedia.json")
    )


def jobs(station, **options) -> FlashJobs:
    library, flash_log, data_dir = station
    return FlashJobs(library, flash_log, data_dir=data_dir, allow_loop=True, **options)


def test_passes_and_records_before_the_first_byte(station, t7, tmp_path):
    _, flash_log, _ = station
    seen: list[str] = []

    def between_passes(target: str) -> None:
        seen.extend(r.status for r in flash_log.records())

    with loop_target(tmp_path, SIZE + 2**20) as device:
        outcome = jobs(station, flasher=Flasher(before_verify=between_passes)).run(
            device, VERSION
        )

    assert outcome.passed, outcome.error
    assert seen == [Status.IN_PROGRESS]
    record = flash_log.get(outcome.record_id or "")
    assert record is not None
    assert (record.status, record.serial, record.slot) == (
        "passed",
        T7_SERIAL,
        record.slot,
    )
    assert record.readback_sha256 == record.image_sha256
    assert record.bytes_written == SIZE


def test_three_at_once_with_one_refused(station, t7, tmp_path):
    _, flash_log, _ = station
    not_a_disk = tmp_path / "plain-file.img"
    not_a_disk.write_bytes(b"\0" * SIZE)
    with (
        loop_target(tmp_path, SIZE, "a") as first,
        loop_target(tmp_path, SIZE, "b") as second,
    ):
        runner = jobs(station)
        started = [runner.start(d, VERSION) for d in (first, str(not_a_disk), second)]
        outcomes = [job.wait(120) for job in started]

    assert [o.status if o else None for o in outcomes] == ["passed", "failed", "passed"]
    assert outcomes[1] is not None
    assert "not a block device" in outcomes[1].error
    assert sorted(r.status for r in flash_log.records()) == [
        "failed",
        "passed",
        "passed",
    ]


def test_a_refused_drive_is_recorded_with_its_serial(station, t7, tmp_path):
    _, flash_log, _ = station
    with loop_target(tmp_path, SIZE // 2, "small") as small:
        outcome = jobs(station).run(small, VERSION)

    assert outcome.status == "failed"
    assert "use a larger drive" in outcome.error
    assert outcome.serial == "S6WBNS0T812345A"
    [record] = flash_log.records()
    assert (record.status, record.serial, record.slot) == (
        "failed",
        "S6WBNS0T812345A",
        outcome.slot,
    )
    assert record.slot.startswith("Loop ")


def test_unreadable_serial_is_refused_unless_allowed(station, tmp_path, monkeypatch):
    install_smartctl_stand_in(
        tmp_path / "smartctl", monkeypatch, output=recording("garbage.txt")
    )
    with loop_target(tmp_path, SIZE) as device:
        refused = jobs(station).run(device, VERSION)
        allowed = jobs(station, allow_without_serial=True).run(device, VERSION)

    assert refused.status == Status.FAILED
    assert "serial number cannot be read" in refused.error
    assert refused.slot.startswith("Loop")  # the record says where it was
    assert allowed.passed, allowed.error


def test_swapped_drive_fails(station, t7, tmp_path):
    answer = t7.parent / "answer.json"

    def swap(target: str) -> None:
        answer.write_text(recording("samsung_t5_sat.json"))

    with loop_target(tmp_path, SIZE) as device:
        outcome = jobs(station, flasher=Flasher(before_verify=swap)).run(
            device, VERSION
        )

    assert outcome.status == Status.FAILED
    assert "swapped" in outcome.error


def test_missing_version_is_recorded_as_failed(station, t7, tmp_path):
    _, flash_log, _ = station
    with loop_target(tmp_path, SIZE) as device:
        outcome = jobs(station).run(device, Version.parse("v9.9.9"))

    assert outcome.status == Status.FAILED
    assert "download it first" in outcome.error
    assert [r.error for r in flash_log.records()] == [outcome.error]


KILLED_FLASH = """
import sys
import time
from pathlib import Path
from kiosk.db import open_database
from kiosk.flashing import Flasher
from kiosk.flashjobs import FlashJobs
from kiosk.flashlog import FlashLog
from kiosk.library import Library
from kiosk.versions import Version

data = Path(sys.argv[1])
library = Library(data / "recommended", data / "quarantine")
log = FlashLog(open_database(data / "kiosk.sqlite3"), "Station 3")
# Small blocks and a pause per progress report keep the write going for
# seconds, so the kill lands while the drive is being written.
slow = Flasher(block_size=64 * 1024, buffers=2, progress_interval=0)
FlashJobs(library, log, data_dir=data, allow_loop=True, flasher=slow).run(
    sys.argv[2], Version.parse("v1.2.3"), progress=lambda p: time.sleep(0.02)
)
"""


def test_killed_flash_leaves_an_interrupted_record(station, t7, tmp_path):
    _, flash_log, data_dir = station
    database = data_dir / "kiosk.sqlite3"
    with loop_target(tmp_path, SIZE) as device:
        child = subprocess.Popen(
            [sys.executable, "-c", KILLED_FLASH, str(data_dir), device],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        )
        try:
            _wait_for_record(database, child)
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(30)

    assert [r.status for r in flash_log.records()] == [Status.IN_PROGRESS]
    assert flash_log.mark_interrupted() == 1
    assert [r.status for r in flash_log.records()] == [Status.INTERRUPTED]


def _wait_for_record(database: Path, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert child.poll() is None, "the flash ended before it could be killed"
        try:
            with sqlite3.connect(database) as db:
                if db.execute("SELECT count(*) FROM flash_records").fetchone()[0]:
                    return
        except sqlite3.OperationalError:
            pass
        time.sleep(0.01)
    raise AssertionError("no flash record appeared")
