from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from .versions import MAX_LENGTH, InvalidVersion, Version


def validate_version(value: str) -> None:
    try:
        Version.parse(value)
    except InvalidVersion as exc:
        raise ValidationError(str(exc), code="invalid_version") from exc


class ReleaseQuerySet(models.QuerySet["Release"]):
    def published(self) -> ReleaseQuerySet:
        return self.filter(status=Release.Status.PUBLISHED)

    def newest_first(self) -> list[Release]:
        """Sorted by version, which SQL cannot do for pre-releases; releases are few."""
        return sorted(self, key=lambda release: release.parsed_version, reverse=True)


class Release(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        WITHDRAWN = "withdrawn", "Withdrawn"

    version = models.CharField(
        max_length=MAX_LENGTH, unique=True, validators=[validate_version]
    )
    release_date = models.DateField(default=timezone.localdate)
    description = models.TextField(blank=True)
    file_size = models.PositiveBigIntegerField(editable=False)
    sha256 = models.CharField("SHA-256", max_length=64, editable=False)
    storage_key = models.CharField(max_length=255, unique=True, editable=False)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        editable=False,
        related_name="+",
    )
    uploaded_at = models.DateTimeField(default=timezone.now, editable=False)
    published_at = models.DateTimeField(null=True, blank=True, editable=False)
    withdrawn_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ReleaseQuerySet.as_manager()

    class Meta:
        ordering = ["-uploaded_at"]

    def __str__(self) -> str:
        return self.version

    @property
    def parsed_version(self) -> Version:
        return Version.parse(self.version)

    @property
    def image_name(self) -> str:
        return self.parsed_version.image_name

    @property
    def checksum(self) -> str:
        return f"sha256:{self.sha256}"

    def publish(self) -> None:
        if self.status != self.Status.DRAFT:
            raise ValidationError(
                f"{self.version} is {self.get_status_display().lower()}; "
                "only a draft can be published.",
                code="not_a_draft",
            )
        self.status = self.Status.PUBLISHED
        self.published_at = timezone.now()
        self.save(update_fields=["status", "published_at"])

    def withdraw(self) -> None:
        if self.status != self.Status.PUBLISHED:
            raise ValidationError(
                f"{self.version} is {self.get_status_display().lower()}; "
                "only a published release can be withdrawn.",
                code="not_published",
            )
        self.status = self.Status.WITHDRAWN
        self.withdrawn_at = timezone.now()
        self.save(update_fields=["status", "withdrawn_at"])


class DownloadGrant(models.Model):
    """A presigned download URL handed out, to whom and from where."""

    release = models.ForeignKey(
        Release, on_delete=models.CASCADE, related_name="grants"
    )
    station = models.ForeignKey(
        "stations.Station",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="grants",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    granted_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField()
    client_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-granted_at"]

    def __str__(self) -> str:
        return f"{self.release.version} to {self.station or self.user}"
