from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from .models import Station


def _show_token_once(request: HttpRequest, station: Station, token: str) -> None:
    messages.warning(
        request,
        f"Token for station {station.name}: {token} — copy it into the station's "
        "settings now; it is not shown again.",
    )


@admin.register(Station)
class StationAdmin(admin.ModelAdmin[Station]):
    list_display = [
        "name",
        "location",
        "is_active",
        "last_seen_at",
        "app_version",
        "images",
        "flashes_today",
        "failure_rate",
        "token_prefix",
    ]
    list_filter = ["is_active"]
    search_fields = ["name", "location"]
    readonly_fields = [
        "token_prefix",
        "created_at",
        "last_seen_at",
        "app_version",
        "images_held",
    ]
    actions = ["rotate_token"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Station]:
        today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
        final = ~Q(flash_records__status="in_progress")
        return (
            super()
            .get_queryset(request)
            .annotate(
                today_total=Count(
                    "flash_records", filter=Q(flash_records__started_at__gte=today)
                ),
                final_total=Count("flash_records", filter=final),
                failed_total=Count(
                    "flash_records", filter=final & ~Q(flash_records__status="passed")
                ),
            )
        )

    @admin.display(description="Images held")
    def images(self, station: Station) -> str:
        return ", ".join(station.images_held) or "—"

    @admin.display(description="Flashes today", ordering="today_total")
    def flashes_today(self, station: Any) -> int:
        return int(station.today_total)

    @admin.display(description="Failure rate")
    def failure_rate(self, station: Any) -> str:
        if not station.final_total:
            return "—"
        return f"{100 * station.failed_total / station.final_total:.1f} %"

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
