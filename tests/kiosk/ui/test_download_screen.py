"""Download screen: Get Latest to a verified image, cancel, error then retry.

The release comes from a release server on 127.0.0.1 and its image from a
FaultyServer that can throttle or corrupt it; the downloader, library and
files are real.
"""

import pytest

from kiosk.versions import Version
from tests.kiosk.faulty_server import Fault
from tests.kiosk.ui.conftest import ReleaseServer, make_station, screens

pytestmark = pytest.mark.anyio

WAIT = 200  # tries of 0.1 s: downloads and hashing run in real threads


async def test_get_latest_downloads_to_a_verified_image(tmp_path, release_server):
    station = make_station(tmp_path, api_base_url=release_server.url)
    async with screens(station) as user:
        await user.open("/")
        await user.should_see("New version v1.2.3 available", retries=WAIT)

        user.find(marker="get-latest").click()

        await user.should_see("v1.2.3 is ready — verified", retries=WAIT)
        await user.should_not_see("New version v1.2.3 available", retries=WAIT)
    assert station.library.versions() == [Version.parse("v1.2.3")]


async def test_cancel_asks_first_then_removes_the_partial_file(
    tmp_path, release_server: ReleaseServer
):
    release_server.catalogue.image.plan.rate = 256 * 1024
    station = make_station(tmp_path, api_base_url=release_server.url)
    async with screens(station) as user:
        await user.open("/download")
        await user.should_see("Download v1.2.3", retries=WAIT)
        user.find(marker="start-download").click()
        await user.should_see("Downloading v1.2.3", retries=WAIT)
        await user.should_see("MB/s", retries=WAIT)

        user.find(marker="cancel-download").click()
        await user.should_see("Cancel the download of v1.2.3?")
        assert station.updates.status().downloading
        user.find(marker="confirm-cancel").click()

        await user.should_see("The download of v1.2.3 was cancelled.", retries=WAIT)
    assert station.library.versions() == []
    assert list(station.settings.staging_dir.iterdir()) == []


async def test_a_failed_download_says_why_and_retry_succeeds(
    tmp_path, release_server: ReleaseServer
):
    image = release_server.catalogue.image
    image.plan.corrupt_at = 1000
    station = make_station(tmp_path, api_base_url=release_server.url)
    async with screens(station) as user:
        await user.open("/")
        await user.should_see("Get Latest", retries=WAIT)
        user.find(marker="get-latest").click()

        await user.should_see("Retry", retries=WAIT)
        status = station.updates.status()
        assert status.download is not None and status.download.error
        await user.should_see(status.download.error)

        image.plan.corrupt_at = None
        image.fault(Fault("drop", after=100_000))
        user.find(marker="retry").click()

        await user.should_see("v1.2.3 is ready — verified", retries=WAIT)
    assert station.library.versions() == [Version.parse("v1.2.3")]
