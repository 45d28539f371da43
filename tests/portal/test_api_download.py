import time
from datetime import datetime, timedelta

import httpx
import pytest
from django.utils import timezone

from portal.releases.models import DownloadGrant, Release

pytestmark = pytest.mark.django_db(transaction=True)

IMAGE = bytes(range(256)) * 4096  # 1 MiB


def grant(api, version="v1.2.3"):
    response = api.post("/api/flash-images/download", json={"version": version})
    assert response.status_code == 200, response.text
    return response.json()


def test_presigned_url_downloads_the_exact_bytes(api, make_release):
    make_release("v1.2.3", IMAGE)

    body = grant(api)
    response = httpx.get(body["download_url"])

    assert set(body) == {"download_url", "expires_at"}
    assert response.status_code == 200
    assert response.content == IMAGE
    assert (
        'filename="FlashingApp_v1.2.3.img"' in response.headers["content-disposition"]
    )


def test_url_expires_after_the_configured_two_hours(api, make_release):
    make_release("v1.2.3", IMAGE)
    before = timezone.now()

    expires_at = datetime.fromisoformat(grant(api)["expires_at"])

    assert timedelta(hours=2) - timedelta(seconds=5) <= expires_at - before
    assert expires_at - before <= timedelta(hours=2, seconds=5)


def test_range_request_resumes_with_206(api, make_release):
    make_release("v1.2.3", IMAGE)
    url = grant(api)["download_url"]

    response = httpx.get(url, headers={"Range": "bytes=1000000-"})

    assert response.status_code == 206
    assert response.content == IMAGE[1000000:]
    assert (
        response.headers["content-range"]
        == f"bytes 1000000-{len(IMAGE) - 1}/{len(IMAGE)}"
    )


def test_store_refuses_a_tampered_url(api, make_release):
    make_release("v1.2.3", IMAGE)
    url = grant(api)["download_url"]
    tampered = url.replace("X-Amz-Expires=7200", "X-Amz-Expires=9999")

    assert tampered != url
    assert httpx.get(tampered).status_code == 403


def test_store_refuses_a_url_reused_for_another_object(api, make_release):
    first = make_release("v1.2.3", IMAGE)
    second = make_release("v1.2.4", b"other image")
    url = grant(api, "v1.2.3")["download_url"]

    reused = url.replace(first.storage_key, second.storage_key)

    assert reused != url
    assert httpx.get(reused).status_code == 403


def test_store_refuses_an_expired_url(api, make_release, settings):
    settings.DOWNLOAD_URL_TTL = 1
    make_release("v1.2.3", IMAGE)
    url = grant(api)["download_url"]

    # The expiry is enforced by the S3 engine's own clock, so real time passes.
    time.sleep(2.5)
    response = httpx.get(url)

    assert response.status_code == 403
    assert "expired" in response.text.lower()


def test_records_every_grant(api, make_release, station):
    make_release("v1.2.3", IMAGE)

    grant(api)
    grant(api)

    grants = list(DownloadGrant.objects.all())
    assert len(grants) == 2
    assert {g.station for g in grants} == {station}
    assert {g.client_address for g in grants} == {"127.0.0.1"}
    assert {g.release.version for g in grants} == {"v1.2.3"}


@pytest.mark.parametrize("status", [Release.Status.DRAFT, Release.Status.WITHDRAWN])
def test_unpublished_versions_are_not_found(api, make_release, status):
    make_release("v1.2.3", IMAGE, status=status)

    response = api.post("/api/flash-images/download", json={"version": "v1.2.3"})

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_version"
    assert not DownloadGrant.objects.exists()


def test_unknown_version_is_not_found(api):
    response = api.post("/api/flash-images/download", json={"version": "v9.9.9"})

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_version"
