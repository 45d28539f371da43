"""The real portal and store: the banner, then Get Latest to a verified image."""

import random

import pytest

from kiosk.versions import Version
from tests.kiosk import portal_fixtures
from tests.kiosk.ui.conftest import make_station, screens

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]
portal = portal_fixtures.portal

IMAGE = random.Random(11).randbytes(3 * 1024 * 1024 + 17)


async def test_the_portals_newer_release_is_announced_and_fetched(
    tmp_path, portal, make_release, monkeypatch
):
    # The live server answers in its own thread; the ORM is only used here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    make_release("v1.1.0", b"old image\n")
    make_release("v2.0.0", IMAGE)
    station = make_station(
        tmp_path, api_base_url=portal.url, station_token=portal.token
    )
    async with screens(station) as user:
        await user.open("/")
        await user.should_see("New version v2.0.0 available", retries=100)

        user.find(marker="get-latest").click()

        await user.should_see("v2.0.0 is ready — verified", retries=300)
    assert station.library.versions() == [Version.parse("v2.0.0")]
    assert station.library.images()[0].path.read_bytes() == IMAGE
