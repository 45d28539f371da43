from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db.models.signals import post_save
from django.dispatch import receiver
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.stations.auth import IsStation, station_of

from . import storage
from .models import DownloadGrant, Release
from .serializers import (
    DownloadGrantSerializer,
    DownloadRequestSerializer,
    ReleaseSerializer,
)
from .versions import Version, is_valid

log = logging.getLogger(__name__)


class CanViewReleases(permissions.BasePermission):
    """Stations, and people allowed to see releases (release managers, QA)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if IsStation().has_permission(request, view):
            return True
        return bool(request.user and request.user.has_perm("releases.view_release"))


class CanDownloadImages(permissions.BasePermission):
    """Stations, and people who manage releases; readers such as QA get no URL."""

    message = (
        "Download URLs are handed to stations and release managers only; "
        "ask a release manager for the image."
    )

    def has_permission(self, request: Request, view: APIView) -> bool:
        if IsStation().has_permission(request, view):
            return True
        return bool(request.user and request.user.has_perm("releases.change_release"))


class NoPublishedRelease(NotFound):
    default_code = "no_published_release"
    default_detail = "No release has been published yet."


class UnknownVersion(NotFound):
    default_code = "unknown_version"


def _client_address(request: Request) -> str | None:
    if settings.PORTAL_BEHIND_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[-1].strip() or None
    return request.META.get("REMOTE_ADDR") or None


STATION_REPORT = [
    OpenApiParameter(
        "X-Station-App-Version",
        str,
        OpenApiParameter.HEADER,
        description="the kiosk's version, shown in the station inventory",
    ),
    OpenApiParameter(
        "X-Station-Images",
        str,
        OpenApiParameter.HEADER,
        description="comma-separated versions of the images the station holds",
    ),
]


def _record_station_report(request: Request) -> None:
    station = station_of(request)
    if station is None:
        return
    app_version = request.headers.get("X-Station-App-Version", "")[:50]
    listed = request.headers.get("X-Station-Images", "")
    images = [text for text in (t.strip() for t in listed.split(",")) if is_valid(text)]
    station.record_report(app_version, sorted(set(images), key=Version.parse)[:50])


LATEST_CACHE_KEY = "releases:latest"


def _latest_body() -> dict[str, object] | None:
    releases = Release.objects.published().newest_first()
    return dict(ReleaseSerializer(releases[0]).data) if releases else None


@receiver(post_save, sender=Release)
def _forget_latest(**kwargs: object) -> None:
    # Other processes keep their copy for at most LATEST_CACHE_TTL seconds.
    cache.delete(LATEST_CACHE_KEY)


class LatestRelease(APIView):
    permission_classes = [CanViewReleases]

    @extend_schema(
        parameters=STATION_REPORT,
        responses={
            200: ReleaseSerializer,
            404: OpenApiResponse(description="`no_published_release`"),
        },
    )
    def get(self, request: Request) -> Response:
        """The newest published release, by version order."""
        _record_station_report(request)
        body = cache.get_or_set(
            LATEST_CACHE_KEY, _latest_body, settings.LATEST_CACHE_TTL
        )
        if body is None:
            raise NoPublishedRelease()
        return Response(body)


class ReleaseList(APIView):
    permission_classes = [CanViewReleases]

    @extend_schema(responses={200: ReleaseSerializer(many=True)})
    def get(self, request: Request) -> Response:
        """Published releases, newest version first."""
        releases = Release.objects.published().newest_first()
        return Response(ReleaseSerializer(releases, many=True).data)


class DownloadUrl(APIView):
    permission_classes = [CanDownloadImages]

    @extend_schema(
        request=DownloadRequestSerializer,
        responses={
            200: DownloadGrantSerializer,
            400: OpenApiResponse(description="`invalid_version` and other input codes"),
            403: OpenApiResponse(description="`permission_denied` for readers (QA)"),
            404: OpenApiResponse(description="`unknown_version`"),
        },
    )
    def post(self, request: Request) -> Response:
        """A presigned URL for one published image, valid DOWNLOAD_URL_TTL seconds."""
        serializer = DownloadRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = serializer.validated_data["version"]
        release = Release.objects.published().filter(version=version).first()
        if release is None:
            raise UnknownVersion(
                f"No published release has version {version}; ask "
                "GET /api/flash-images/latest for the current one."
            )

        grant = storage.presign_download(release.storage_key, release.image_name)
        station = station_of(request)
        DownloadGrant.objects.create(
            release=release,
            station=station,
            user=request.user if isinstance(request.user, User) else None,
            expires_at=grant.expires_at,
            client_address=_client_address(request),
        )
        log.info(
            "download granted version=%s to=%s address=%s",
            version,
            station or request.user,
            _client_address(request),
        )
        body = DownloadGrantSerializer(
            {"download_url": grant.url, "expires_at": grant.expires_at}
        ).data
        return Response(body, status=status.HTTP_200_OK)
