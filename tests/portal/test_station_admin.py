"""Administrators create stations in the admin; the token is shown once."""

import re

import httpx
import pytest

from portal.stations.models import Station, hash_token
from tests.portal.conftest import login

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = re.compile(r"Token for station [^:]+: ([A-Za-z0-9_-]{40,})")


@pytest.fixture
def admin_client(live_server, django_user_model):
    django_user_model.objects.create_superuser("root", password="root-pass-123")
    with login(live_server, "root", "root-pass-123") as client:
        yield client


def _shown_token(page: str) -> str:
    match = TOKEN.search(page)
    assert match, "the page shows no token"
    return match.group(1)


def _post(client, path, data):
    data = {"csrfmiddlewaretoken": client.cookies["csrftoken"], **data}
    headers = {"Referer": f"{client.base_url}{path}"}
    return client.post(path, data=data, headers=headers, follow_redirects=True)


def test_new_station_token_is_shown_once_and_only_its_hash_kept(
    admin_client, live_server, make_release
):
    make_release("v1.2.3")

    page = _post(
        admin_client,
        "/admin/stations/station/add/",
        {"name": "Line 2", "is_active": "on"},
    )

    token = _shown_token(page.text)
    station = Station.objects.get(name="Line 2")
    assert station.token_hash == hash_token(token)
    assert (
        token
        not in admin_client.get(f"/admin/stations/station/{station.pk}/change/").text
    )
    answer = httpx.get(
        f"{live_server.url}/api/flash-images/latest",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200


def test_rotating_shows_a_new_token_and_retires_the_old_one(
    admin_client, station, station_token
):
    page = _post(
        admin_client,
        "/admin/stations/station/",
        {"action": "rotate_token", "_selected_action": str(station.pk)},
    )

    new_token = _shown_token(page.text)
    station.refresh_from_db()
    assert new_token != station_token
    assert station.token_hash == hash_token(new_token)
