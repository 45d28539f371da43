from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .models import FlashRecord


@admin.register(FlashRecord)
class FlashRecordAdmin(admin.ModelAdmin[FlashRecord]):
    """Read-only: records are what stations saw; nobody edits them here."""

    list_display = [
        "started_at",
        "serial",
        "status",
        "image_version",
        "station",
        "slot",
        "model",
    ]
    list_filter = ["status", "station", "image_version"]
    search_fields = ["=serial", "=id"]
    date_hierarchy = "started_at"
    list_select_related = ["station"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: FlashRecord | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: FlashRecord | None = None
    ) -> bool:
        return False
