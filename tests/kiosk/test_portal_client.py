"""The portal client against the real portal and store, over HTTP on 127.0.0.1."""

import hashlib
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from kiosk.errors import PortalError, PortalOffline
from kiosk.portal_client import PortalClient
from kiosk.versions import Version
from portal.releases.models import Release as PortalRelease
from tests.kiosk import portal_fixtures
from tests.kiosk.portal_fixtures import Portal

pytestmark = pytest.mark.django_db(transaction=True)
portal = portal_fixtures.portal
refused_url = portal_fixtures.refused_url

IMAGE = bytes(range(256)) * 1024


def client_of(where: Portal, **options) -> PortalClient:
    return PortalClient(where.url, where.token, sleep=lambda _: None, **options)


def test_latest_is_the_typed_newest_release(portal, make_release):
    make_release("v1.9.0")
    made = make_release("v1.10.0", IMAGE)
    PortalRelease.objects.filter(pk=made.pk).update(description="Line B fixes")

    with client_of(portal) as client:
        release = client.latest()

    assert release is not None
    assert release.version == Version.parse("v1.10.0")
    assert release.file_size == len(IMAGE)
    assert release.sha256 == hashlib.sha256(IMAGE).hexdigest()
    assert release.release_date == made.release_date
    assert release.description == "Line B fixes"


def test_latest_is_none_before_anything_is_published(portal, make_release):
    make_release("v1.0.0", status=PortalRelease.Status.DRAFT)

    with client_of(portal) as client:
        assert client.latest() is None
        assert not client.offline


def test_download_url_fetches_the_exact_image(portal, make_release):
    make_release("v1.2.3", IMAGE)

    with client_of(portal) as client:
        url, expires_at = client.download_url(Version.parse("v1.2.3"))

    assert httpx.get(url, timeout=30).content == IMAGE
    lifetime = expires_at - datetime.now(UTC)
    assert timedelta(hours=2) - timedelta(minutes=1) < lifetime <= timedelta(hours=2)


def test_a_withdrawn_version_is_a_plain_error(portal, make_release):
    make_release("v1.2.3", status=PortalRelease.Status.WITHDRAWN)

    with client_of(portal) as client, pytest.raises(PortalError) as caught:
        client.download_url(Version.parse("v1.2.3"))

    assert caught.value.code == "unknown_version"
    assert "no longer offers v1.2.3" in caught.value.message


def test_lists_releases_and_finds_one_by_version(portal, make_release):
    for version in ["v1.9.0", "v1.10.0", "v1.10.0-rc.1"]:
        make_release(version)

    with client_of(portal) as client:
        listed = [str(r.version) for r in client.releases()]
        found = client.release(Version.parse("v1.9.0"))
        with pytest.raises(PortalError, match=r"no published release v2\.0\.0"):
            client.release(Version.parse("v2.0.0"))

    assert listed == ["v1.10.0", "v1.10.0-rc.1", "v1.9.0"]
    assert found.version == Version.parse("v1.9.0")


def test_a_wrong_token_asks_for_a_new_one(portal):
    with (
        PortalClient(portal.url, "not-a-token") as client,
        pytest.raises(PortalError) as caught,
    ):
        client.latest()

    assert caught.value.status == 401
    assert "refused this station's token" in caught.value.message
    assert not isinstance(caught.value, PortalOffline)


def test_an_unreachable_portal_is_offline_since_the_first_failure(refused_url):
    clock = iter(
        [datetime(2026, 12, 3, 10, 42, tzinfo=UTC)]
        + [datetime(2026, 12, 3, 11, 0, tzinfo=UTC)] * 20
    )
    client = PortalClient(
        refused_url, "token", sleep=lambda _: None, clock=lambda: next(clock)
    )

    with client:
        with pytest.raises(PortalOffline) as caught:
            client.latest()
        with pytest.raises(PortalOffline):
            client.latest()

    assert client.offline_since == datetime(2026, 12, 3, 10, 42, tzinfo=UTC)
    assert caught.value.message.startswith("Portal unreachable since 10:42")
    assert "can still be flashed" in caught.value.message
