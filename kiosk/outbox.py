"""The outbox: finished flash records travel to the portal, each exactly once.

A record is pending until the portal has answered for it. Batches are sent
after each flash and periodically; a batch whose answer is lost (a kill, a
dropped connection) is sent again, which the portal accepts without creating
anything twice, because records are idempotent by id. Records the portal
refuses stay in the local log with the reason and are not sent again.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from kiosk.errors import PortalError
from kiosk.flashlog import FINAL, FlashRecord, utcnow
from kiosk.portal_client import PortalClient

log = logging.getLogger(__name__)

BATCH_SIZE = 200  # the portal takes at most 500
PERIOD = 60.0
MAX_BACKOFF = 15 * 60.0


@dataclass(frozen=True)
class SyncResult:
    accepted: int
    rejected: int
    pending: int


class Outbox:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        client: PortalClient,
        *,
        batch_size: int = BATCH_SIZE,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._client = client
        self._batch_size = batch_size
        self._clock = clock
        self._lock = threading.Lock()

    def pending(self) -> int:
        """Finished records the portal has not answered for yet."""
        with self._sessions() as session:
            return int(session.scalar(select(func.count()).where(_pending())) or 0)

    def send(self, max_batches: int | None = None) -> SyncResult:
        """Send pending records in batches (all, or at most `max_batches`).

        Raises PortalOffline or PortalError; batches answered before that
        are marked sent.
        """
        accepted = rejected = sent_batches = 0
        with self._lock:
            while max_batches is None or sent_batches < max_batches:
                batch = self._next_batch()
                if not batch:
                    break
                sent_batches += 1
                answers = self._client.send_flash_records(
                    [_as_json(record) for record in batch]
                )
                by_id = {answer.id: answer for answer in answers}
                accepted_ids = [r.id for r in batch if _accepted(by_id, r.id)]
                refusals = {
                    r.id: by_id[r.id].detail if r.id in by_id else "no answer"
                    for r in batch
                    if r.id not in accepted_ids
                }
                self._mark(accepted_ids, refusals)
                accepted += len(accepted_ids)
                rejected += len(refusals)
        if rejected:
            log.warning("portal refused %d flash records; see sync_error", rejected)
        log.info("outbox sent: %d accepted, %d refused", accepted, rejected)
        return SyncResult(accepted, rejected, self.pending())

    def _next_batch(self) -> list[FlashRecord]:
        query = (
            select(FlashRecord)
            .where(_pending())
            .order_by(FlashRecord.started_at)
            .limit(self._batch_size)
        )
        with self._sessions() as session:
            return list(session.scalars(query))

    def _mark(self, accepted: list[str], refusals: dict[str, str]) -> None:
        now = self._clock()
        with self._sessions.begin() as session:
            if accepted:
                session.execute(
                    update(FlashRecord)
                    .where(FlashRecord.id.in_(accepted))
                    .values(synced_at=now, sync_error=None)
                )
            for record_id, reason in refusals.items():
                session.execute(
                    update(FlashRecord)
                    .where(FlashRecord.id == record_id)
                    .values(synced_at=now, sync_error=reason)
                )


def _pending() -> Any:
    return FlashRecord.synced_at.is_(None) & FlashRecord.status.in_(
        [str(status) for status in FINAL]
    )


def _accepted(answers: dict[str, Any], record_id: str) -> bool:
    answer = answers.get(record_id)
    return answer is not None and bool(answer.accepted)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") + "Z" if moment else None


def _as_json(record: FlashRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "serial": record.serial or "",
        "model": record.model or "",
        "slot": record.slot or "",
        "image_version": record.image_version,
        "image_sha256": record.image_sha256,
        "readback_sha256": record.readback_sha256 or "",
        "status": record.status,
        "error": record.error or "",
        "image_size": record.image_size,
        "bytes_written": record.bytes_written,
        "started_at": _iso(record.started_at),
        "ended_at": _iso(record.ended_at),
    }


class OutboxSender:
    """Sends in a background thread: on demand (after a flash) and periodically,
    backing off while the portal is unreachable."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        period: float = PERIOD,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._outbox = outbox
        self._period = period
        self._jitter = jitter
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self.last_error = ""

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        """Send soon, e.g. right after a flash ended."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        delay = 0.0
        while not self._stop.is_set():
            self._wake.wait(delay)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._outbox.send()
            except Exception as exc:  # the thread must outlive any one failure
                if isinstance(exc, PortalError):
                    self.last_error = exc.message
                else:
                    log.exception("outbox send failed unexpectedly")
                    self.last_error = (
                        f"Flash records could not be sent ({exc}); "
                        "they wait and are tried again."
                    )
                delay = min(MAX_BACKOFF, max(self._period, delay * 2))
                delay *= 0.75 + self._jitter() / 2
                log.warning("outbox waits %.0f s: %s", delay, self.last_error)
            else:
                self.last_error = ""
                delay = self._period
