from __future__ import annotations

from typing import Any

from rest_framework import serializers

from .models import Release
from .versions import MAX_LENGTH, InvalidVersion, Version


class ReleaseSerializer(serializers.ModelSerializer[Release]):
    """The documented shape of a release; kiosks validate it field by field."""

    checksum = serializers.CharField(
        read_only=True, help_text="`sha256:` followed by 64 lowercase hex digits."
    )

    class Meta:
        model = Release
        fields = ["version", "release_date", "file_size", "checksum", "description"]
        read_only_fields = fields


class DownloadRequestSerializer(serializers.Serializer[None]):
    version = serializers.CharField(
        max_length=MAX_LENGTH,
        help_text="A release version such as v1.2.3 or v1.3.0-rc.1.",
    )

    def validate_version(self, value: str) -> str:
        try:
            return str(Version.parse(value))
        except InvalidVersion as exc:
            raise serializers.ValidationError(str(exc), code="invalid_version") from exc


class DownloadGrantSerializer(serializers.Serializer[dict[str, Any]]):
    download_url = serializers.URLField()
    expires_at = serializers.DateTimeField()
