"""History: the flash log newest first, searched, filtered and exported."""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from nicegui import app, ui

from kiosk.flashlog import ExportFormat, FlashRecord, Status
from kiosk.station import Station
from kiosk.ui.worker import blocking

STATUS_WORDS = {
    "": "Any status",
    Status.PASSED.value: "Passed",
    Status.FAILED.value: "Failed",
    Status.CANCELLED.value: "Cancelled",
    Status.INTERRUPTED.value: "Interrupted",
    Status.IN_PROGRESS.value: "In progress",
}
COLUMNS = [
    {"name": "started", "label": "Started (UTC)", "field": "started", "align": "left"},
    {"name": "serial", "label": "Serial", "field": "serial", "align": "left"},
    {"name": "slot", "label": "Slot", "field": "slot", "align": "left"},
    {"name": "version", "label": "Image", "field": "version", "align": "left"},
    {"name": "status", "label": "Result", "field": "status", "align": "left"},
    {"name": "error", "label": "Reason", "field": "error", "align": "left"},
]
MARKS = {"passed": "✔ ", "failed": "✖ ", "cancelled": "■ ", "interrupted": "! "}
HANDED_OUT_PREFIX = ".download-"
HANDED_OUT_FOR = 3600.0  # seconds a browser has to fetch an export


def day(text: object) -> datetime | None:
    """A date from the date input as naive UTC midnight, None when empty."""
    if not isinstance(text, str) or not text:
        return None
    return datetime.combine(date.fromisoformat(text), datetime.min.time())


def row(record: FlashRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "started": f"{record.started_at:%Y-%m-%d %H:%M:%S}",
        "serial": record.serial or "—",
        "slot": record.slot or record.device,
        "version": record.image_version,
        "status": MARKS.get(record.status, "") + STATUS_WORDS.get(record.status, ""),
        "error": record.error or "",
    }


@dataclass(frozen=True)
class Filters:
    """What the screen shows: the same narrows the table and the export."""

    serial: str | None
    status: Status | None
    since: datetime | None
    until: datetime | None


def export_file(station: Station, fmt: ExportFormat, filters: Filters) -> Path:
    """Blocking: write the export beside the logs; the file to hand the browser.

    The export replaces logs/flash_operations.{fmt}; the browser gets a name
    of its own for it, so a later export (another tab, the command line)
    cannot change what it downloads. It fetches the file from disk in pieces,
    so a log of a million records never has to fit in memory.
    """
    logs = station.settings.logs_dir
    _tidy_handed_out(logs)
    handed_out = logs / f"{HANDED_OUT_PREFIX}{uuid.uuid4().hex}.{fmt}"
    station.flash_log.save_export(
        logs / f"flash_operations.{fmt}",
        fmt,
        since=filters.since,
        until=filters.until,
        serial=filters.serial,
        status=filters.status,
        also=handed_out,
    )
    return handed_out


def _tidy_handed_out(logs: Path) -> None:
    """Remove the copies handed to browsers more than an hour ago."""
    oldest = time.time() - HANDED_OUT_FOR
    for path in logs.glob(f"{HANDED_OUT_PREFIX}*"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < oldest:
                path.unlink()


def render(station: Station) -> None:
    ui.label("History").classes("text-h4")
    with ui.row().classes("w-full items-end gap-4"):
        serial = ui.input("Search by serial").props("clearable").classes("w-72")
        serial.mark("serial")
        status = ui.select(STATUS_WORDS, value="", label="Result").classes("w-56")
        status.mark("status")
        since = ui.input("From (UTC)").props("type=date stack-label").classes("w-56")
        until = ui.input("To (UTC)").props("type=date stack-label").classes("w-56")
    with ui.row().classes("w-full gap-4"):
        ui.button("Search", icon="search", on_click=lambda: load()).mark("search")
        ui.button(
            "Export CSV", icon="file_download", on_click=lambda: export("csv")
        ).mark("export-csv")
        ui.button(
            "Export JSON", icon="file_download", on_click=lambda: export("json")
        ).mark("export-json")
    count = ui.label().classes("kiosk-muted").props("data-testid=count")
    table = ui.table(columns=COLUMNS, rows=[], row_key="id").classes("w-full")
    table.props("wrap-cells :rows-per-page-options=[20,50,100] data-testid=history")

    def filters() -> Filters:
        end = day(until.value)
        return Filters(
            serial=(serial.value or "").strip() or None,
            status=Status(status.value) if status.value else None,
            since=day(since.value),
            until=end + timedelta(days=1) if end else None,
        )

    async def load() -> None:
        shown = filters()
        records = await blocking(
            station.flash_log.records,
            serial=shown.serial,
            status=shown.status,
            since=shown.since,
            until=shown.until,
        )
        table.rows = [row(record) for record in records]
        table.update()
        count.text = f"{len(records)} flash record(s), newest first"

    async def export(fmt: ExportFormat) -> None:
        try:
            path = await blocking(export_file, station, fmt, filters())
        except OSError as exc:
            ui.notify(
                f"The export could not be written ({exc.strerror}); "
                "check the disk of the data directory.",
                type="negative",
            )
            return
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", station.name).strip("-")
        media = "text/csv" if fmt == "csv" else "application/json"
        # A route that serves the file once, in pieces, then goes away.
        url = app.add_static_file(local_file=path, single_use=True)
        ui.context.client.on_delete(lambda: app.remove_route(unquote(url)))
        ui.download.from_url(url, f"flash_records_{name}_{stamp}.{fmt}", media)

    serial.on("keydown.enter", load)
    status.on_value_change(load)
    since.on_value_change(load)
    until.on_value_change(load)
    ui.timer(0.01, load, once=True)
