"""Who may call which endpoint: stations, release managers, staff; nobody else."""

import httpx
import pytest
from django.contrib.auth.models import Group

from portal.releases.apps import RELEASE_MANAGERS
from portal.stations.models import Station
from tests.portal.conftest import login

pytestmark = pytest.mark.django_db(transaction=True)

CALLS = [
    ("GET", "/api/flash-images/latest", None),
    ("GET", "/api/flash-images/", None),
    ("POST", "/api/flash-images/download", {"version": "v1.2.3"}),
]


@pytest.fixture
def published(make_release):
    return make_release("v1.2.3")


def _call(client: httpx.Client, method: str, path: str, body) -> httpx.Response:
    token = client.cookies.get("csrftoken") or ""
    headers = {"X-CSRFToken": token, "Referer": str(client.base_url)} if token else {}
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body"), CALLS)
def test_anonymous_callers_get_401(live_server, published, method, path, body):
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
