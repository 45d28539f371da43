"""Settings: the download location is checked before it is saved."""

import json

import pytest

from tests.kiosk.ui.conftest import make_station, screens

pytestmark = pytest.mark.anyio


async def test_a_bad_location_is_refused_with_the_reason(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    station = make_station(tmp_path)
    async with screens(station) as user:
        await user.open("/settings")
        user.find(marker="location").clear().type("a-file/images")
        user.find(marker="save").click()
        await user.should_see("cannot be created", retries=50)
    assert not station.settings.settings_file.exists()


async def test_a_good_location_and_versions_kept_are_saved(tmp_path):
    station = make_station(tmp_path)
    async with screens(station) as user:
        await user.open("/settings")
        await user.should_see("No images yet.", retries=50)
        user.find(marker="location").clear().type("images/")
        user.find(marker="keep").clear().type("5")
        user.find(marker="save").click()
        await user.should_see("after the station restarts", retries=50)
    saved = json.loads(station.settings.settings_file.read_text())
    assert saved == {"recommended_path": "images/", "max_stored_versions": 5}
    assert station.library.keep == 5
    assert (tmp_path / "images").is_dir()
