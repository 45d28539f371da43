from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from portal.releases.versions import InvalidVersion, Version

from .models import FlashRecord

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
PRINTABLE = re.compile(r"[\x20-\x7e]*")
# What a station records of a flash, as it sends it.
STATION_FIELDS = [
    "id",
    "serial",
    "model",
    "slot",
    "image_version",
    "image_sha256",
    "readback_sha256",
    "status",
    "error",
    "image_size",
    "bytes_written",
    "started_at",
    "ended_at",
]
# Station clocks drift; a day ahead is a broken clock, not drift.
CLOCK_SKEW = timedelta(days=1)
# Records in one upload; larger batches are refused whole (413).
BATCH_LIMIT = 500


class IncomingFlashRecordSerializer(serializers.ModelSerializer[FlashRecord]):
    """A record as a station sends it; validated one by one within a batch."""

    id = serializers.UUIDField()
    serial = serializers.CharField(
        max_length=100, allow_blank=True, trim_whitespace=False
    )
    # A drive refused before flashing (image missing) has no image checksum.
    image_sha256 = serializers.CharField(max_length=64, allow_blank=True)
    readback_sha256 = serializers.CharField(
        max_length=64, allow_blank=True, required=False
    )

    class Meta:
        model = FlashRecord
        fields = STATION_FIELDS

    def validate_serial(self, value: str) -> str:
        if not PRINTABLE.fullmatch(value):
            raise serializers.ValidationError(
                "A serial number may hold printable ASCII characters only.",
                code="invalid_serial",
            )
        return value

    def validate_image_version(self, value: str) -> str:
        try:
            return str(Version.parse(value))
        except InvalidVersion as exc:
            raise serializers.ValidationError(str(exc), code="invalid_version") from exc

    def validate_image_sha256(self, value: str) -> str:
        return _sha256(value) if value else value

    def validate_readback_sha256(self, value: str) -> str:
        return _sha256(value) if value else value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        latest_allowed = timezone.now() + CLOCK_SKEW
        for field in ("started_at", "ended_at"):
            moment = attrs.get(field)
            if moment is not None and moment > latest_allowed:
                raise serializers.ValidationError(
                    {
                        field: f"{moment.isoformat()} is in the future; "
                        "check the station's clock."
                    },
                    code="timestamp_in_future",
                )
        ended = attrs.get("ended_at")
        if ended is not None and ended < attrs["started_at"]:
            raise serializers.ValidationError(
                {"ended_at": "A flash cannot end before it started."},
                code="ended_before_start",
            )
        if attrs["bytes_written"] > attrs["image_size"]:
            raise serializers.ValidationError(
                {"bytes_written": "More bytes written than the image holds."},
                code="too_many_bytes",
            )
        return attrs


def _sha256(value: str) -> str:
    if not SHA256_HEX.fullmatch(value):
        raise serializers.ValidationError(
            "A SHA-256 is 64 lowercase hexadecimal digits.", code="invalid_checksum"
        )
    return value


class FlashRecordBatchSerializer(serializers.Serializer[dict[str, Any]]):
    records = serializers.ListField(
        child=serializers.JSONField(),
        allow_empty=False,
        help_text=f"Up to {BATCH_LIMIT} records; each is answered on its own.",
    )


class RecordResultSerializer(serializers.Serializer[dict[str, Any]]):
    id = serializers.CharField()
    accepted = serializers.BooleanField()
    outcome = serializers.ChoiceField(
        choices=["created", "updated", "unchanged", "rejected"]
    )
    code = serializers.CharField(required=False)
    detail = serializers.CharField(required=False)


class BatchResultSerializer(serializers.Serializer[dict[str, Any]]):
    results = RecordResultSerializer(many=True)


class FlashRecordSerializer(serializers.ModelSerializer[FlashRecord]):
    """A record as QA reads it."""

    station = serializers.CharField(source="station.name")

    class Meta:
        model = FlashRecord
        fields = ["id", "station", *STATION_FIELDS[1:], "received_at"]
        read_only_fields = fields
