from __future__ import annotations

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
