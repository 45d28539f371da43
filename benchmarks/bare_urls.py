"""The portal's URLs plus one bare view: what Django and gunicorn cost alone."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path

from portal.urls import urlpatterns as portal_urlpatterns

BARE_PATH = "bench/bare"


def bare(request: HttpRequest) -> JsonResponse:
    """Constant JSON shaped like a release: no token, no database, no DRF."""
    return JsonResponse(
        {
            "version": "v0.0.0",
            "release_date": "2000-01-01",
            "file_size": 0,
            "checksum": "sha256:" + "0" * 64,
            "description": "",
        }
    )


# Last, so the station API resolves exactly as it does without it.
urlpatterns = [*portal_urlpatterns, path(BARE_PATH, bare)]
