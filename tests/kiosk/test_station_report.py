"""A station's update check tells the portal what it runs and holds."""

import pytest

from kiosk import __version__
from kiosk.portal_client import PortalClient
from kiosk.versions import Version

pytestmark = pytest.mark.django_db(transaction=True)


def test_update_check_reports_app_version_and_images(
    live_server, station, station_token, make_release, s3
):
    make_release("v1.2.3")
    held = [Version.parse("v1.2.2"), Version.parse("v1.10.0")]

    with PortalClient(live_server.url, station_token) as client:
        latest = client.latest(holding=held)

    station.refresh_from_db()
    assert latest is not None
    assert str(latest.version) == "v1.2.3"
    assert station.app_version == __version__
    assert station.images_held == ["v1.2.2", "v1.10.0"]
