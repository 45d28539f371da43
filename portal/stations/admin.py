from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import Station


def _show_token_once(request: HttpRequest, station: Station, token: str) -> None:
    messages.warning(
        request,
        f"Token for station {station.name}: {token} — copy it into the station's "
        "settings now; it is not shown again.",
    )


@admin.register(Station)
class StationAdmin(admin.ModelAdmin[Station]):
    list_display = ["name", "location", "is_active", "last_seen_at", "token_prefix"]
    list_filter = ["is_active"]
    search_fields = ["name", "location"]
    readonly_fields = ["token_prefix", "created_at", "last_seen_at"]
    actions = ["rotate_token"]

    def save_model(
        self, request: HttpRequest, obj: Station, form: Any, change: bool
    ) -> None:
        token = None if change else obj.issue_token()
        super().save_model(request, obj, form, change)
        if token:
            _show_token_once(request, obj, token)

    @admin.action(description="Issue a new token (the old one stops working)")
    def rotate_token(self, request: HttpRequest, queryset: QuerySet[Station]) -> None:
        for station in queryset:
            token = station.issue_token()
            station.save(update_fields=["token_hash", "token_prefix"])
            _show_token_once(request, station, token)
