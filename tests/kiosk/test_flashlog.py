"""The flash log: a record before the first byte, an outcome after, exports."""

import csv
import io
import json
import sqlite3
from datetime import datetime, timedelta

import pytest

from kiosk.db import open_database
from kiosk.flashlog import EXPORT_COLUMNS, FlashLog, Status


class Clock:
    """Injected time: starts at a fixed moment, moves only when told to."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 8, 0, 0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def database(tmp_path):
    return tmp_path / "kiosk.sqlite3"


@pytest.fixture
def flash_log(database, clock) -> FlashLog:
    return FlashLog(open_database(database), "Station 3", clock=clock)


def start(flash_log: FlashLog, serial: str = "S3K9NX0T123456") -> str:
    return flash_log.start(
        device="/dev/sdb",
        image_version="v1.2.3",
        image_sha256="ab" * 32,
        image_size=1000,
        serial=serial,
        model="Samsung PSSD T7",
        slot="Slot 3",
    )


def status_of(flash_log: FlashLog, record_id: str) -> str:
    record = flash_log.get(record_id)
    assert record is not None, f"no record {record_id}"
    return record.status


def test_record_is_on_disk_before_the_flash_begins(flash_log, database):
    record_id = start(flash_log)

    # Another connection, as after a crash, sees the committed record.
    with sqlite3.connect(database) as other:
        row = other.execute(
            "SELECT status, serial FROM flash_records WHERE id = ?", (record_id,)
        ).fetchone()
    assert row == ("in_progress", "S3K9NX0T123456")


def test_finish_records_the_outcome(flash_log, clock):
    record_id = start(flash_log)
    clock.advance(seconds=90)

    flash_log.finish(
        record_id, Status.PASSED, bytes_written=1000, readback_sha256="ab" * 32
    )

    record = flash_log.get(record_id)
    assert record is not None
    assert record.status == Status.PASSED
    assert record.readback_sha256 == "ab" * 32
    assert record.ended_at - record.started_at == timedelta(seconds=90)


def test_a_final_record_cannot_change_again(flash_log):
    record_id = start(flash_log)
    flash_log.finish(record_id, Status.FAILED, bytes_written=10, error="I/O error")

    with pytest.raises(ValueError, match="not in progress"):
        flash_log.finish(record_id, Status.PASSED, bytes_written=1000)
    assert status_of(flash_log, record_id) == Status.FAILED


def test_unfinished_records_become_interrupted_at_start_up(database, clock):
    first = FlashLog(open_database(database), "Station 3", clock=clock)
    cut_short = start(first)
    done = start(first, serial="OTHER")
    first.finish(done, Status.PASSED, bytes_written=1000)

    restarted = FlashLog(open_database(database), "Station 3", clock=clock)

    assert restarted.mark_interrupted() == 1
    interrupted = restarted.get(cut_short)
    assert interrupted is not None
    assert interrupted.status == Status.INTERRUPTED
    assert "flash the drive again" in (interrupted.error or "")
    assert status_of(restarted, done) == Status.PASSED


def test_lists_newest_first_and_searches_by_serial(flash_log, clock):
    for serial in ["AAA111", "BBB222", "AAA333"]:
        start(flash_log, serial)
        clock.advance(minutes=1)

    assert [r.serial for r in flash_log.records()] == ["AAA333", "BBB222", "AAA111"]
    assert [r.serial for r in flash_log.records(serial="AAA")] == ["AAA333", "AAA111"]
    assert flash_log.records(serial="%") == []


def test_csv_export_round_trips(flash_log, clock):
    ids = [start(flash_log, f"SER{i}") for i in range(3)]
    flash_log.finish(
        ids[0], Status.FAILED, bytes_written=5, error='drive "gone", sorry'
    )
    out = io.StringIO()

    count = flash_log.export(out, "csv")

    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert count == 3
    assert list(rows[0]) == EXPORT_COLUMNS
    assert [row["id"] for row in rows] == ids
    assert rows[0]["error"] == 'drive "gone", sorry'
    assert rows[0]["started_at"] == "2026-12-01T08:00:00Z"
    assert rows[1]["ended_at"] == ""


def test_json_export_round_trips_and_filters_by_date(flash_log, clock):
    early = start(flash_log, "EARLY")
    clock.advance(days=2)
    late = start(flash_log, "LATE")
    out = io.StringIO()

    count = flash_log.export(out, "json", since=datetime(2026, 12, 2))

    items = json.loads(out.getvalue())
    assert count == 1
    assert [item["id"] for item in items] == [late]
    assert items[0]["serial"] == "LATE"
    assert early not in out.getvalue()


def test_export_filters_like_the_record_search(flash_log, clock):
    ids = {serial: start(flash_log, serial) for serial in ("S3K9_1", "S3K9%2", "T7")}
    for record_id in ids.values():
        flash_log.finish(record_id, Status.PASSED, bytes_written=5)
    flash_log.finish(start(flash_log, "S3K9_4"), Status.FAILED, bytes_written=1)

    def exported(**filters: object) -> list[str]:
        out = io.StringIO()
        flash_log.export(out, "csv", **filters)
        return [row["serial"] for row in csv.DictReader(io.StringIO(out.getvalue()))]

    def shown(**filters: object) -> list[str]:
        records = flash_log.records(**filters)
        return sorted(record.serial or "" for record in records)

    for filters in (
        {"serial": "s3k9"},  # case does not matter, as in the search
        {"serial": "_"},  # LIKE's wildcards are matched as themselves
        {"serial": "%"},
        {"serial": "S3K9", "status": Status.PASSED},
        {"status": Status.FAILED},
    ):
        assert sorted(exported(**filters)) == shown(**filters), filters
    assert exported(serial="_") == ["S3K9_1", "S3K9_4"]
    assert exported(serial="S3K9", status=Status.PASSED) == ["S3K9_1", "S3K9%2"]


def test_empty_export_is_valid(flash_log):
    out = io.StringIO()

    assert flash_log.export(out, "json") == 0
    assert json.loads(out.getvalue()) == []
