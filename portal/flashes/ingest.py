"""Batches of flash records from stations: each record answered on its own.

Records are idempotent by their id (a UUID made by the station), so a batch
resent after a lost answer creates nothing twice. A record may move from
"in progress" to a final status, never back, and only its own station may
send it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from rest_framework.exceptions import ValidationError

from portal.api import first_error
from portal.stations.models import Station

from .models import FlashRecord
from .serializers import IncomingFlashRecordSerializer

log = logging.getLogger(__name__)

UPDATABLE = ["status", "error", "readback_sha256", "bytes_written", "ended_at"]


def _rejected(record_id: Any, code: str, detail: str) -> dict[str, Any]:
    shown = str(record_id)[:64] if record_id is not None else ""
    return {
        "id": shown,
        "accepted": False,
        "outcome": "rejected",
        "code": code,
        "detail": detail,
    }


def _accepted(record_id: Any, outcome: str) -> dict[str, Any]:
    return {"id": str(record_id), "accepted": True, "outcome": outcome}


def ingest(station: Station, items: list[Any]) -> list[dict[str, Any]]:
    """Store what is valid and new; one result per item, in the same order."""
    # One serializer validates every item: building its fields costs more
    # than validating a record, so it is done once per batch.
    serializer = IncomingFlashRecordSerializer()
    checked: list[dict[str, Any]] = []  # validated fields, or a rejection
    for item in items:
        try:
            checked.append(serializer.run_validation(item))
        except ValidationError as exc:
            error = first_error(exc.detail)
            record_id = item.get("id") if isinstance(item, dict) else None
            code = getattr(error, "code", "invalid")
            checked.append(_rejected(record_id, str(code), str(error)))

    ids = [entry["id"] for entry in checked if "outcome" not in entry]
    with transaction.atomic():
        known = {
            record.id: record
            for record in FlashRecord.objects.select_for_update().filter(id__in=ids)
        }
        results = [
            entry if "outcome" in entry else _apply(station, entry, known)
            for entry in checked
        ]
        FlashRecord.objects.bulk_create(
            [record for record in known.values() if record._state.adding],
            ignore_conflicts=True,
        )
    rejected = sum(1 for result in results if not result["accepted"])
    log.info(
        "flash records from %s: %d received, %d rejected",
        station.name,
        len(items),
        rejected,
    )
    return results


def _apply(
    station: Station, attrs: dict[str, Any], known: dict[Any, FlashRecord]
) -> dict[str, Any]:
    record_id = attrs["id"]
    record = known.get(record_id)
    if record is None:
        known[record_id] = FlashRecord(station=station, **attrs)
        return _accepted(record_id, "created")
    if record.station_id != station.pk:
        return _rejected(
            record_id, "not_your_record", "Another station owns a record with this id."
        )
    if record.is_final or attrs["status"] == FlashRecord.Status.IN_PROGRESS:
        return _accepted(record_id, "unchanged")
    for field in UPDATABLE:
        setattr(record, field, attrs.get(field, getattr(record, field)))
    if not record._state.adding:
        record.save(update_fields=UPDATABLE)
    return _accepted(record_id, "updated")
