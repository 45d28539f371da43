"""Flash records: one per drive written, kept before, during and after the flash.

A record is committed before the first byte goes to the drive and completed
when the flash ends; records still "in progress" when the kiosk starts were cut
short by a crash or power loss and become "interrupted". Exports stream rows
straight from SQLite, so a million records need no more memory than a few.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TextIO, cast

from sqlalchemy import (
    BigInteger,
    CursorResult,
    DateTime,
    Index,
    Result,
    String,
    Text,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from .db import Base

log = logging.getLogger(__name__)

ExportFormat = Literal["csv", "json"]


class Status(StrEnum):
    IN_PROGRESS = "in_progress"
    PASSED = "passed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


FINAL = frozenset(Status) - {Status.IN_PROGRESS}


class FlashRecord(Base):
    __tablename__ = "flash_records"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    station: Mapped[str] = mapped_column(String(100))
    serial: Mapped[str | None] = mapped_column(String(100))
    model: Mapped[str | None] = mapped_column(String(200))
    slot: Mapped[str | None] = mapped_column(String(50))
    device: Mapped[str] = mapped_column(String(200))
    image_version: Mapped[str] = mapped_column(String(64))
    image_sha256: Mapped[str] = mapped_column(String(64))
    image_size: Mapped[int] = mapped_column(BigInteger)
    readback_sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    bytes_written: Mapped[int] = mapped_column(BigInteger, default=0)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Set when the portal accepted or rejected the final record (the outbox).
    synced_at: Mapped[datetime | None] = mapped_column(DateTime)
    sync_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_flash_records_started_at", "started_at"),
        Index("ix_flash_records_serial", "serial"),
        Index("ix_flash_records_status", "status"),
        Index("ix_flash_records_synced_at", "synced_at"),
    )


EXPORT_COLUMNS = [
    "id",
    "station",
    "serial",
    "model",
    "slot",
    "device",
    "image_version",
    "image_sha256",
    "image_size",
    "readback_sha256",
    "status",
    "error",
    "bytes_written",
    "started_at",
    "ended_at",
]


def utcnow() -> datetime:
    """Naive UTC, as stored: SQLite keeps no time zone."""
    return datetime.now(UTC).replace(tzinfo=None)


class FlashLog:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        station: str,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._station = station
        self._clock = clock

    def start(
        self,
        *,
        device: str,
        image_version: str,
        image_sha256: str,
        image_size: int,
        serial: str | None = None,
        model: str | None = None,
        slot: str | None = None,
    ) -> str:
        """Commit an "in progress" record and return its id; call before writing."""
        record = FlashRecord(
            id=str(uuid.uuid4()),
            station=self._station,
            serial=serial,
            model=model,
            slot=slot,
            device=device,
            image_version=image_version,
            image_sha256=image_sha256,
            image_size=image_size,
            status=Status.IN_PROGRESS,
            bytes_written=0,
            started_at=self._clock(),
        )
        with self._sessions.begin() as session:
            session.add(record)
        log.info(
            "flash started id=%s device=%s serial=%s version=%s",
            record.id,
            device,
            serial,
            image_version,
        )
        return record.id

    def finish(
        self,
        record_id: str,
        status: Status,
        *,
        bytes_written: int,
        readback_sha256: str | None = None,
        error: str | None = None,
    ) -> None:
        if status not in FINAL:
            raise ValueError(f"{status} is not a final status")
        with self._sessions.begin() as session:
            result = session.execute(
                update(FlashRecord)
                .where(FlashRecord.id == record_id)
                .where(FlashRecord.status == Status.IN_PROGRESS)
                .values(
                    status=status,
                    bytes_written=bytes_written,
                    readback_sha256=readback_sha256,
                    error=error,
                    ended_at=self._clock(),
                )
            )
        if not _rowcount(result):
            raise ValueError(f"flash record {record_id} is not in progress")
        log.info("flash %s id=%s error=%s", status, record_id, error)

    def mark_interrupted(self) -> int:
        """At start-up: records left "in progress" by a crash become "interrupted"."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(FlashRecord)
                .where(FlashRecord.status == Status.IN_PROGRESS)
                .values(
                    status=Status.INTERRUPTED,
                    error="The station stopped while this drive was being written; "
                    "flash the drive again.",
                    ended_at=self._clock(),
                )
            )
        count = _rowcount(result)
        if count:
            log.warning("marked %d unfinished flash records as interrupted", count)
        return count

    def get(self, record_id: str) -> FlashRecord | None:
        with self._sessions() as session:
            return session.get(FlashRecord, record_id)

    def records(
        self,
        *,
        serial: str | None = None,
        status: Status | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 200,
    ) -> list[FlashRecord]:
        """Newest first; `serial` matches a part of the serial number."""
        query = self._filtered(since, until).order_by(FlashRecord.started_at.desc())
        if serial:
            query = query.where(FlashRecord.serial.contains(serial, autoescape=True))
        if status:
            query = query.where(FlashRecord.status == status)
        with self._sessions() as session:
            return list(session.scalars(query.limit(limit)))

    def export(
        self,
        out: TextIO,
        fmt: ExportFormat,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        serial: str | None = None,
        status: Status | None = None,
    ) -> int:
        """Stream records oldest first as CSV or a JSON array; returns the count.

        The filters are those of `records`, so an export holds what was shown.
        """
        rows = self._rows(since, until, serial, status)
        return _write_csv(out, rows) if fmt == "csv" else _write_json(out, rows)

    def save_export(
        self,
        path: Path,
        fmt: ExportFormat,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        serial: str | None = None,
        status: Status | None = None,
        also: Path | None = None,
    ) -> int:
        """Write an export to `path` whole or not at all; the count.

        Each call writes a file of its own beside `path` and renames it into
        place, so two exports at once never mix their rows. `also` names the
        same file a second time, made before the rename: a later export cannot
        change what is read under that name.
        """
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=".export-")
        os.fchmod(fd, 0o644)  # like the files a plain open() makes
        written = Path(name)
        try:
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as out:
                count = self.export(
                    out, fmt, since=since, until=until, serial=serial, status=status
                )
            if also is not None:
                os.link(written, also)
            written.replace(path)
        except BaseException:
            written.unlink(missing_ok=True)
            if also is not None:
                also.unlink(missing_ok=True)
            raise
        return count

    def _filtered(self, since: datetime | None, until: datetime | None) -> Any:
        query = select(FlashRecord)
        if since:
            query = query.where(FlashRecord.started_at >= since)
        if until:
            query = query.where(FlashRecord.started_at < until)
        return query

    def _rows(
        self,
        since: datetime | None,
        until: datetime | None,
        serial: str | None,
        status: Status | None,
    ) -> Iterator[Any]:
        # The export reads SQLite's own cursor and lets SQLite format the
        # times: SQLAlchemy rows and a million datetime objects, made only to
        # be printed again, cost three quarters of the time. Times compare as
        # stored text.
        columns = [
            f"strftime('%Y-%m-%dT%H:%M:%SZ', {name})" if name.endswith("_at") else name
            for name in EXPORT_COLUMNS
        ]
        conditions = ["started_at >= ?", "started_at < ?"]
        values: list[str] = [
            _stored(since or datetime.min),
            _stored(until or datetime.max),
        ]
        if serial:
            # LIKE, as `records` uses through SQLAlchemy's contains().
            conditions.append("serial LIKE ? ESCAPE '/'")
            escaped = re.sub(r"([/%_])", r"/\1", serial)
            values.append(f"%{escaped}%")
        if status:
            conditions.append("status = ?")
            values.append(Status(status).value)
        query = (
            f"SELECT {', '.join(columns)} FROM flash_records"  # noqa: S608
            f" WHERE {' AND '.join(conditions)} ORDER BY started_at"
        )
        with self._sessions() as session:
            raw = session.connection().connection.driver_connection
            assert raw is not None
            yield from raw.execute(query, values)


def _rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE changed (SQLAlchemy types it on the cursor result only)."""
    return int(cast(CursorResult[Any], result).rowcount)


def _stored(moment: datetime) -> str:
    """A time as SQLAlchemy stores it in SQLite, so text order is time order."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _write_csv(out: TextIO, rows: Iterator[Any]) -> int:
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    count = 0

    def counted() -> Iterator[Any]:
        nonlocal count
        for row in rows:
            count += 1
            yield row

    writer.writerows(counted())
    return count


def _write_json(out: TextIO, rows: Iterator[Any]) -> int:
    out.write("[")
    count = 0
    for row in rows:
        item = json.dumps(dict(zip(EXPORT_COLUMNS, row, strict=True)))
        out.write(("\n" if count == 0 else ",\n") + item)
        count += 1
    out.write("\n]\n")
    return count
