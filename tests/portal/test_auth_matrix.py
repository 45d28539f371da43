"""Who may call which endpoint: stations, release managers, QA, superusers.

Stations read releases, download images and send flash records; release
managers read releases and download images; QA reads releases and flash
history and downloads nothing; nobody else is served.
"""

from datetime import UTC, datetime

import httpx
import pytest
from django.contrib.auth.models import Group

from portal.flashes.models import FlashRecord
from portal.releases.apps import RELEASE_MANAGERS
from portal.releases.models import DownloadGrant
from portal.stations.models import Station
from tests.portal.conftest import login

pytestmark = pytest.mark.django_db(transaction=True)

RELEASE_READS = [
    ("GET", "/api/flash-images/latest", None),
    ("GET", "/api/flash-images/", None),
]
DOWNLOAD = ("POST", "/api/flash-images/download", {"version": "v1.2.3"})
CALLS = [*RELEASE_READS, DOWNLOAD]

RECORD_ID = "0b7e4c52-3d5a-4f0e-9a57-2c1d8e6f9b31"
SERIAL = "S3K9NX0T123456"
HISTORY = [
    ("GET", "/api/flash-records/", None),
    ("GET", f"/api/flash-records/{RECORD_ID}", None),
    ("GET", f"/api/serials/{SERIAL}/flash-records", None),
]
RECORD_UPLOAD: tuple[str, str, object] = (
    "POST",
    "/api/flash-records/",
    {"records": []},
)


@pytest.fixture
def published(make_release):
    return make_release("v1.2.3")


@pytest.fixture
def flashed(station) -> FlashRecord:
    started = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    return FlashRecord.objects.create(
        id=RECORD_ID,
        station=station,
        serial=SERIAL,
        image_version="v1.2.3",
        image_sha256="a" * 64,
        status=FlashRecord.Status.PASSED,
        image_size=1000,
        bytes_written=1000,
        started_at=started,
        ended_at=started,
    )


def _call(client: httpx.Client, method: str, path: str, body) -> httpx.Response:
    token = client.cookies.get("csrftoken") or ""
    headers = {"X-CSRFToken": token, "Referer": str(client.base_url)} if token else {}
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body"), [*CALLS, *HISTORY, RECORD_UPLOAD])
def test_anonymous_callers_get_401(live_server, published, flashed, method, path, body):
    with httpx.Client(base_url=live_server.url) as client:
        response = _call(client, method, path, body)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path", "body"), CALLS)
def test_unknown_token_gets_401(live_server, published, method, path, body):
    headers = {"Authorization": "Bearer not-a-token"}
    with httpx.Client(base_url=live_server.url, headers=headers) as client:
        response = _call(client, method, path, body)

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


@pytest.mark.parametrize(("method", "path", "body"), CALLS)
def test_revoked_station_gets_401(api, station, published, method, path, body):
    Station.objects.filter(pk=station.pk).update(is_active=False)

    response = _call(api, method, path, body)

    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_rotated_token_stops_working(api, station, published):
    station.issue_token()
    station.save()

    assert api.get("/api/flash-images/latest").status_code == 401


@pytest.mark.parametrize(("method", "path", "body"), CALLS)
def test_active_station_is_served_and_seen(api, station, published, method, path, body):
    response = _call(api, method, path, body)

    assert response.status_code == 200
    station.refresh_from_db()
    assert station.last_seen_at is not None


@pytest.mark.parametrize(("method", "path", "body"), CALLS)
def test_release_managers_are_served(
    live_server, release_manager, published, method, path, body
):
    with login(live_server, "rm", "rm-password-123") as client:
        assert _call(client, method, path, body).status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), CALLS)
def test_superusers_are_served(
    live_server, django_user_model, published, method, path, body
):
    django_user_model.objects.create_superuser("root", password="root-pass-123")
    with login(live_server, "root", "root-pass-123") as client:
        assert _call(client, method, path, body).status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), CALLS)
def test_staff_without_release_permission_get_403(
    live_server, django_user_model, published, method, path, body
):
    django_user_model.objects.create_user(
        "qa", password="qa-password-123", is_staff=True
    )
    with login(live_server, "qa", "qa-password-123") as client:
        response = _call(client, method, path, body)

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


@pytest.mark.parametrize(("method", "path", "body"), HISTORY)
def test_stations_cannot_read_history(api, flashed, method, path, body):
    response = _call(api, method, path, body)

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


@pytest.mark.parametrize(("method", "path", "body"), HISTORY)
def test_release_managers_cannot_read_history(
    live_server, release_manager, flashed, method, path, body
):
    with login(live_server, "rm", "rm-password-123") as client:
        response = _call(client, method, path, body)

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


@pytest.mark.parametrize(("method", "path", "body"), HISTORY)
def test_qa_reads_history(qa, flashed, method, path, body):
    assert _call(qa, method, path, body).status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), RELEASE_READS)
def test_qa_reads_releases(qa, published, method, path, body):
    assert _call(qa, method, path, body).status_code == 200


def test_qa_gets_no_download_url(qa, published):
    response = _call(qa, *DOWNLOAD)

    assert response.status_code == 403
    body = response.json()
    assert set(body) == {"code", "detail"}
    assert body["code"] == "permission_denied"
    assert "release managers only" in body["detail"]  # not a CSRF refusal
    assert not DownloadGrant.objects.exists()


def test_release_managers_group_grants_releases_only(release_manager):
    permissions = set(
        Group.objects.get(name=RELEASE_MANAGERS).permissions.values_list(
            "content_type__app_label", flat=True
        )
    )
    assert permissions == {"releases"}
    assert release_manager.has_perm("releases.add_release")
    assert not release_manager.has_perm("stations.view_station")
    assert not release_manager.has_perm("releases.delete_release")
