"""The header: portal state, outbox count, and the update banner's rules."""

import pytest

from kiosk.flashlog import Status
from kiosk.library import Library
from tests.kiosk import portal_fixtures
from tests.kiosk.library_files import add
from tests.kiosk.ui.conftest import ReleaseServer, make_station, screens

pytestmark = pytest.mark.anyio
refused_url = portal_fixtures.refused_url

WAIT = 100


def holding(data_dir, *versions: str) -> None:
    """Put verified images of `versions` into the station's library."""
    library = Library(data_dir / "recommended", data_dir / "quarantine", keep=5)
    for version in versions:
        add(library, data_dir / "staging", version)


async def test_no_banner_when_a_local_image_is_as_new(tmp_path, release_server):
    holding(tmp_path, "v1.2.3")
    station = make_station(tmp_path, api_base_url=release_server.url)
    async with screens(station) as user:
        await user.open("/")
        await user.should_see("Online", retries=WAIT)
        await user.should_not_see("New version")


async def test_banner_when_the_portal_is_newer_than_every_image(
    tmp_path, release_server
):
    holding(tmp_path, "v1.2.0", "v1.1.9")
    station = make_station(tmp_path, api_base_url=release_server.url)
    async with screens(station) as user:
        await user.open("/history")
        await user.should_see("New version v1.2.3 available", retries=WAIT)
        await user.should_see("Get Latest")


async def test_dismiss_lasts_for_that_version_only(
    tmp_path, release_server: ReleaseServer
):
    station = make_station(tmp_path, api_base_url=release_server.url)
    async with screens(station) as user:
        await user.open("/")
        await user.should_see("New version v1.2.3 available", retries=WAIT)

        user.find(marker="dismiss").click()
        await user.should_not_see("New version v1.2.3 available")
        await user.open("/settings")
        await user.should_not_see("New version v1.2.3 available")

        release_server.catalogue.version = "v1.3.0"
        user.find(marker="check-now").click()
        await user.should_see("New version v1.3.0 available", retries=WAIT)


async def test_offline_hides_the_banner_and_counts_unsent_records(
    tmp_path, refused_url
):
    station = make_station(tmp_path, api_base_url=refused_url)
    for serial in ("S1", "S2"):
        record = station.flash_log.start(
            device="/dev/sdb",
            image_version="v1.2.3",
            image_sha256="",
            image_size=1,
            serial=serial,
        )
        station.flash_log.finish(record, Status.PASSED, bytes_written=1)
    async with screens(station) as user:
        await user.open("/")
        await user.should_see("Offline since", retries=WAIT)
        await user.should_see("2 flash records waiting to be sent", retries=WAIT)
        await user.should_not_see("New version")
