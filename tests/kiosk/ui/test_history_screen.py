"""History: newest first, search by serial, filter by result, export CSV and JSON."""

import csv
import io
import json
from datetime import datetime, timedelta

import pytest
from nicegui import ui

from kiosk.flashlog import FlashLog, Status
from kiosk.ui.history import Filters, export_file
from tests.kiosk.ui.conftest import make_station, screens

pytestmark = pytest.mark.anyio

WAIT = 50
START = datetime(2026, 12, 1, 8, 0)


def record(flash_log: FlashLog, serial: str, status: Status) -> None:
    record_id = flash_log.start(
        device="/dev/sdb",
        image_version="v1.2.3",
        image_sha256="ab" * 32,
        image_size=100,
        serial=serial,
        slot="Slot 3",
    )
    error = None if status == Status.PASSED else "Reading back did not give the image."
    flash_log.finish(record_id, status, bytes_written=100, error=error)


@pytest.fixture
def station(tmp_path):
    station = make_station(tmp_path)
    moments = iter(START + timedelta(minutes=n) for n in range(100))
    station.flash_log = FlashLog(
        station.flash_log._sessions, station.name, clock=lambda: next(moments)
    )
    record(station.flash_log, "S6WBNS0T000001A", Status.PASSED)
    record(station.flash_log, "S6WBNS0T000002B", Status.FAILED)
    record(station.flash_log, "S3R2NB0K000003C", Status.PASSED)
    return station


async def test_newest_first_and_search_by_serial(station):
    async with screens(station) as user:
        await user.open("/history")
        await user.should_see("3 flash record(s), newest first", retries=WAIT)
        table = user.find(kind=ui.table).elements.pop()
        assert [row["serial"] for row in table.rows] == [
            "S3R2NB0K000003C",
            "S6WBNS0T000002B",
            "S6WBNS0T000001A",
        ]

        user.find(marker="serial").type("0002")
        user.find(marker="search").click()

        await user.should_see("1 flash record(s), newest first", retries=WAIT)
        assert [row["serial"] for row in table.rows] == ["S6WBNS0T000002B"]
        assert table.rows[0]["status"] == "✖ Failed"


async def test_filter_by_result(station):
    async with screens(station) as user:
        await user.open("/history")
        await user.should_see("3 flash record(s), newest first", retries=WAIT)
        user.find(marker="status").click()
        user.find("Passed").click()
        await user.should_see("2 flash record(s), newest first", retries=WAIT)


async def test_export_csv_and_json_download_in_the_browser(station):
    async with screens(station) as user:
        await user.open("/history")
        await user.should_see("3 flash record(s), newest first", retries=WAIT)

        user.find(marker="export-csv").click()
        rows = list(
            csv.DictReader(io.StringIO((await user.download.next(timeout=10)).text))
        )
        user.find(marker="export-json").click()
        items = json.loads((await user.download.next(timeout=10)).text)

    assert [r["serial"] for r in rows] == [i["serial"] for i in items]
    assert [r["status"] for r in rows] == ["passed", "failed", "passed"]
    assert rows[0]["started_at"] == "2026-12-01T08:00:00Z"
    assert (station.settings.logs_dir / "flash_operations.json").is_file()


async def test_export_holds_what_the_filters_show(station):
    async with screens(station) as user:
        await user.open("/history")
        await user.should_see("3 flash record(s), newest first", retries=WAIT)
        user.find(marker="status").click()
        user.find("Passed").click()
        await user.should_see("2 flash record(s), newest first", retries=WAIT)
        user.find(marker="serial").type("S6WB")
        user.find(marker="search").click()
        await user.should_see("1 flash record(s), newest first", retries=WAIT)

        user.find(marker="export-csv").click()
        download = await user.download.next(timeout=10)

    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [(r["serial"], r["status"]) for r in rows] == [("S6WBNS0T000001A", "passed")]


def test_a_later_export_does_not_change_one_handed_out(station):
    first = export_file(station, "csv", Filters("000001A", None, None, None))
    second = export_file(station, "csv", Filters(None, Status.FAILED, None, None))

    def serials(path) -> list[str]:
        return [row["serial"] for row in csv.DictReader(io.StringIO(path.read_text()))]

    assert serials(first) == ["S6WBNS0T000001A"]
    assert serials(second) == ["S6WBNS0T000002B"]
    kept = station.settings.logs_dir / "flash_operations.csv"
    assert serials(kept) == ["S6WBNS0T000002B"]
    assert not list(station.settings.logs_dir.glob(".export-*"))
