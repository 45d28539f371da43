from __future__ import annotations

import logging
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt

from .forms import ReleaseUploadForm
from .models import DownloadGrant, Release
from .storage import StorageError
from .uploads import ImageUploadHandler

log = logging.getLogger(__name__)


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin[Release]):
    list_display = [
        "version",
        "status",
        "release_date",
        "size_gib",
        "uploaded_by",
        "uploaded_at",
    ]
    list_filter = ["status"]
    search_fields = ["version", "description", "sha256"]
    actions = ["publish", "withdraw"]
    upload_fields = ("version", "release_date", "description", "image")
    readonly_fields = [
        "status",
        "file_size",
        "sha256",
        "storage_key",
        "uploaded_by",
        "uploaded_at",
        "published_at",
        "withdrawn_at",
    ]

    @admin.display(description="Size (GiB)")
    def size_gib(self, release: Release) -> str:
        return f"{release.file_size / 2**30:.2f}"

    def get_form(
        self,
        request: HttpRequest,
        obj: Release | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> type[ModelForm[Release]]:
        if obj is None:
            kwargs["form"] = ReleaseUploadForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(
        self, request: HttpRequest, obj: Release | None = None
    ) -> list[str]:
        if obj is None:
            return []
        return ["version", *self.readonly_fields]

    def get_fields(
        self, request: HttpRequest, obj: Release | None = None
    ) -> tuple[str, ...]:
        if obj is None:
            return (*self.upload_fields, "expected_sha256", "publish_now")
        return ("version", "release_date", "description", *self.readonly_fields)

    # The image streams to S3 while the request body is parsed, so the upload
    # handler must be installed before anything reads request.POST; the CSRF
    # check still runs, inside changeform_view.
    @method_decorator(csrf_exempt)
    def add_view(
        self,
        request: HttpRequest,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        handler = ImageUploadHandler(request)
        request.upload_handlers = [handler]
        try:
            return super().add_view(request, form_url, extra_context)
        except StorageError as exc:
            log.exception("admin upload failed")
            self.message_user(
                request,
                f"The image could not be stored ({exc}). Nothing was saved; "
                "try the upload again, and tell an administrator if it fails again.",
                messages.ERROR,
            )
            return HttpResponseRedirect(request.path)
        finally:
            stored = handler.stored
            kept = (
                stored is not None
                and Release.objects.filter(storage_key=stored.key).exists()
            )
            handler.discard_unless(kept)

    def save_model(
        self, request: HttpRequest, obj: Release, form: Any, change: bool
    ) -> None:
        if not change:
            obj.uploaded_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)

    def has_delete_permission(
        self, request: HttpRequest, obj: Release | None = None
    ) -> bool:
        # Stations may hold any published image; withdraw instead of deleting.
        return False

    @admin.action(description="Publish the selected drafts", permissions=["change"])
    def publish(self, request: HttpRequest, queryset: QuerySet[Release]) -> None:
        self._transition(request, queryset, Release.publish, "published")

    @admin.action(description="Withdraw the selected releases", permissions=["change"])
    def withdraw(self, request: HttpRequest, queryset: QuerySet[Release]) -> None:
        self._transition(request, queryset, Release.withdraw, "withdrawn")

    def _transition(
        self, request: HttpRequest, queryset: QuerySet[Release], step: Any, done: str
    ) -> None:
        for release in queryset:
            try:
                with transaction.atomic():
                    step(release)
            except ValidationError as exc:
                self.message_user(request, exc.messages[0], messages.WARNING)
            else:
                self.message_user(
                    request, f"{release.version} {done}.", messages.SUCCESS
                )


@admin.register(DownloadGrant)
class DownloadGrantAdmin(admin.ModelAdmin[DownloadGrant]):
    list_display = [
        "release",
        "station",
        "user",
        "granted_at",
        "expires_at",
        "client_address",
    ]
    list_filter = ["release", "station"]
    date_hierarchy = "granted_at"
    list_select_related = ["release", "station", "user"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: DownloadGrant | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: DownloadGrant | None = None
    ) -> bool:
        return False
