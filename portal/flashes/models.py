from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class FlashRecord(models.Model):
    """One drive written by one station, as the station recorded it."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        INTERRUPTED = "interrupted", "Interrupted"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    station = models.ForeignKey(
        "stations.Station", on_delete=models.PROTECT, related_name="flash_records"
    )
    serial = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=200, blank=True)
    slot = models.CharField(max_length=50, blank=True)
    image_version = models.CharField(max_length=64)
    image_sha256 = models.CharField(max_length=64)
    readback_sha256 = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    error = models.TextField(blank=True)
    image_size = models.PositiveBigIntegerField()
    bytes_written = models.PositiveBigIntegerField(default=0)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["serial", "-started_at"]),
            models.Index(fields=["station", "-started_at"]),
            models.Index(fields=["image_version", "-started_at"]),
            models.Index(fields=["status", "-started_at"]),
            models.Index(fields=["-started_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.serial or 'no serial'} {self.image_version} {self.status}"

    @property
    def is_final(self) -> bool:
        return self.status != self.Status.IN_PROGRESS
