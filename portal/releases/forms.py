from __future__ import annotations

import re
from typing import Any

from django import forms

from .models import Release
from .uploads import StoredImageFile
from .versions import InvalidVersion, Version

SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class ReleaseUploadForm(forms.ModelForm[Release]):
    """A new release: its image arrives in S3 before this form is validated."""

    image = forms.FileField(
        help_text="The raw disk image (.img). It streams to storage while it uploads."
    )
    expected_sha256 = forms.CharField(
        label="Expected SHA-256",
        required=False,
        max_length=71,
        help_text="Optional. Paste the checksum from the build; a mismatch rejects "
        "the upload.",
    )
    publish_now = forms.BooleanField(
        required=False, help_text="Publish at once; otherwise it stays a draft."
    )

    class Meta:
        model = Release
        fields = ["version", "release_date", "description"]

    def clean_version(self) -> str:
        text = self.cleaned_data["version"].strip()
        try:
            return str(Version.parse(text))
        except InvalidVersion as exc:
            raise forms.ValidationError(str(exc), code="invalid_version") from exc

    def clean_expected_sha256(self) -> str:
        text = str(self.cleaned_data["expected_sha256"]).strip().lower()
        text = text.removeprefix("sha256:")
        if text and not SHA256_HEX.fullmatch(text):
            raise forms.ValidationError(
                "A SHA-256 is 64 hexadecimal digits (optionally after 'sha256:').",
                code="invalid_checksum",
            )
        return text

    def clean_image(self) -> StoredImageFile:
        image = self.cleaned_data["image"]
        if not isinstance(image, StoredImageFile):
            raise forms.ValidationError(
                "The image did not reach storage; upload it again.", code="not_stored"
            )
        return image

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        image, expected = cleaned.get("image"), cleaned.get("expected_sha256")
        if isinstance(image, StoredImageFile) and expected:
            actual = image.stored.sha256
            if actual != expected:
                self.add_error(
                    "image",
                    forms.ValidationError(
                        f"The uploaded image's SHA-256 is {actual}, not the expected "
                        f"{expected}. Nothing was saved; check the file and upload "
                        "it again.",
                        code="checksum_mismatch",
                    ),
                )
        return cleaned

    def save(self, commit: bool = True) -> Release:
        release = super().save(commit=False)
        stored = self.cleaned_data["image"].stored
        release.file_size = stored.size
        release.sha256 = stored.sha256
        release.storage_key = stored.key
        if self.cleaned_data["publish_now"]:
            release.status = Release.Status.PUBLISHED
            release.published_at = release.uploaded_at
        if commit:
            release.save()
        return release
