from __future__ import annotations

from datetime import UTC, datetime

from django import forms
from django.db.models import QuerySet

from .models import FlashRecord


class FlashRecordFilter(forms.Form):
    """Query parameters of the history API, validated like a form."""

    serial = forms.CharField(required=False, max_length=100)
    version = forms.CharField(required=False, max_length=64)
    station = forms.CharField(required=False, max_length=100)
    status = forms.ChoiceField(
        required=False, choices=[("", "any"), *FlashRecord.Status.choices]
    )
    since = forms.DateTimeField(required=False)
    until = forms.DateTimeField(required=False)
    format = forms.ChoiceField(
        required=False, choices=[("json", "json"), ("csv", "csv")]
    )

    def clean_since(self) -> datetime | None:
        return self._in_utc("since")

    def clean_until(self) -> datetime | None:
        return self._in_utc("until")

    def _in_utc(self, field: str) -> datetime | None:
        moment = self.cleaned_data[field]
        if moment is None:
            return None
        utc = in_utc(moment)
        if utc is None:
            raise forms.ValidationError(
                "Enter a date/time between the years 1 and 9999 in UTC.",
                code="invalid",
            )
        return utc

    def apply(self, queryset: QuerySet[FlashRecord]) -> QuerySet[FlashRecord]:
        data = self.cleaned_data
        lookups = {
            "serial": data["serial"],
            "image_version": data["version"],
            "station__name": data["station"],
            "status": data["status"],
            "started_at__gte": data["since"],
            "started_at__lt": data["until"],
        }
        return queryset.filter(
            **{key: value for key, value in lookups.items() if value}
        )


def in_utc(moment: datetime) -> datetime | None:
    """`moment` in UTC, or None where its offset pushes it past year 1 or 9999.

    Queries take moments in UTC: PostgreSQL refuses offsets beyond 15:59,
    which Python accepts.
    """
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return None
