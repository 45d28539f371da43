"""Updates end to end: the real portal and store, the real downloader, real files."""

import hashlib
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kiosk import config
from kiosk.config import Settings
from kiosk.downloads import Downloader
from kiosk.errors import DownloadError, PortalError, PortalOffline, StorageError
from kiosk.library import Library
from kiosk.portal_client import PortalClient
from kiosk.updates import DownloadState, DownloadStatus, Updates, UpdateStatus
from kiosk.versions import Version
from tests.kiosk import portal_fixtures
from tests.kiosk.library_files import add, names
from tests.kiosk.portal_fixtures import DROP, FaultServer, Portal, Reply, release_body

pytestmark = pytest.mark.django_db(transaction=True)
portal = portal_fixtures.portal
refused_url = portal_fixtures.refused_url

IMAGE = random.Random(7).randbytes(2 * 1024 * 1024 + 333)


@dataclass
class Station:
    settings: Settings
    library: Library
    client: PortalClient
    updates: Updates


def make_station(data_dir: Path, url: str, token: str, **library: int) -> Station:
    settings = config.load(
        data_dir,
        environ={"KIOSK_API_BASE_URL": url, "KIOSK_STATION_TOKEN": token},
    )
    settings.make_dirs()
    shelf = Library(
        settings.recommended_dir,
        settings.quarantine_dir,
        keep=settings.max_stored_versions,
        **library,
    )
    downloader = Downloader(
        settings.staging_dir, segments=settings.download_segments, chunk_size=256 * 1024
    )
    client = PortalClient(url, token, sleep=lambda _: None, retries=1)
    updates = Updates(shelf, downloader, client, staging_dir=settings.staging_dir)
    return Station(settings, shelf, client, updates)


def download_state(status: UpdateStatus) -> DownloadState | None:
    return status.download.state if status.download else None


@pytest.fixture
def station(tmp_path, portal: Portal) -> Iterator[Station]:
    made = make_station(tmp_path, portal.url, portal.token)
    yield made
    made.updates.cancel()
    made.updates.wait(30)
    made.client.close()


def download(station: Station, version: str | None = None) -> DownloadStatus:
    station.updates.start_download(Version.parse(version) if version else None)
    status = station.updates.wait(60)
    assert status.download is not None
    assert not status.downloading, "the download did not end within 60 s"
    return status.download


def test_check_compares_the_latest_release_with_local_images(station, make_release):
    make_release("v1.2.3", IMAGE)

    status = station.updates.check()

    assert status.latest is not None
    assert str(status.latest.version) == "v1.2.3"
    assert status.local == ()
    assert status.update_available
    assert not status.offline
    assert status.checked_at is not None


def test_downloads_the_latest_into_recommended_verified(station, make_release):
    make_release("v1.2.3", IMAGE)

    done = download(station)

    assert done.state is DownloadState.DONE, done.error
    assert done.done == len(IMAGE)
    image = station.library.get(Version.parse("v1.2.3"))
    assert image is not None
    assert image.path.read_bytes() == IMAGE
    assert image.sha256 == hashlib.sha256(IMAGE).hexdigest()
    assert list(station.settings.staging_dir.iterdir()) == []
    assert not station.updates.check().update_available


def test_keeps_newest_three_versions(station, make_release):
    for index, version in enumerate(["v1.0.0", "v1.1.0", "v1.9.0", "v1.10.0"]):
        make_release(version, IMAGE[index:])
        assert download(station, version).state is DownloadState.DONE

    assert names(station.library) == ["v1.10.0", "v1.9.0", "v1.1.0"]
    assert station.updates.status().local == tuple(station.library.versions())


def test_a_tampered_image_never_reaches_recommended(station, make_release, s3):
    release = make_release("v1.2.3", IMAGE)
    tampered = bytearray(IMAGE)
    tampered[1_000_000] ^= 0xFF
    s3.client().put_object(
        Bucket="firmware", Key=release.storage_key, Body=bytes(tampered)
    )

    failed = download(station)

    assert failed.state is DownloadState.FAILED
    assert "SHA-256 did not match" in failed.error
    assert list(station.settings.recommended_dir.iterdir()) == []


def test_only_one_download_runs_at_a_time(station, make_release):
    make_release("v1.2.3", IMAGE)
    progressing, go_on = threading.Event(), threading.Event()

    def hold(status: UpdateStatus) -> None:
        if status.download is not None and status.download.done > 0:
            progressing.set()
            go_on.wait(30)

    station.updates.subscribe(hold)
    station.updates.start_download()
    assert progressing.wait(30)
    try:
        with pytest.raises(DownloadError, match="already running"):
            station.updates.start_download()
    finally:
        go_on.set()

    assert download_state(station.updates.wait(60)) is DownloadState.DONE


def test_a_cancelled_download_leaves_nothing(station, make_release):
    make_release("v1.2.3", IMAGE)
    cancelled = threading.Event()

    def cancel_once_started(status: UpdateStatus) -> None:
        if status.downloading and not cancelled.is_set():
            cancelled.set()
            station.updates.cancel()

    station.updates.subscribe(cancel_once_started)
    stopped = download(station)

    assert stopped.state is DownloadState.CANCELLED
    assert "cancelled" in stopped.error
    assert station.library.versions() == []


def test_a_staged_file_of_another_size_starts_no_download(station, make_release):
    make_release("v1.2.3", IMAGE)
    # A verified file of an earlier release under the same name, say.
    staged = station.settings.staging_dir / "FlashingApp_v1.2.3.img"
    staged.write_bytes(IMAGE[:-1])

    status = station.updates.check_and_resume()

    assert status.update_available
    assert status.download is None
    assert staged.read_bytes() == IMAGE[:-1]


def test_an_image_already_here_is_not_fetched_again(station, make_release):
    make_release("v1.2.3", IMAGE)
    download(station)

    again = station.updates.start_download()

    assert again.state is DownloadState.DONE
    assert names(station.library) == ["v1.2.3"]


def test_refuses_to_start_without_room(tmp_path, portal, make_release):
    make_release("v1.2.3", IMAGE)
    station = make_station(tmp_path, portal.url, portal.token, margin=10**18)

    with station.client, pytest.raises(StorageError, match="Not enough space"):
        station.updates.start_download()

    assert station.updates.status().download is None


def test_nothing_to_download_before_a_release_is_published(station):
    status = station.updates.check()

    assert status.latest is None
    assert status.no_release
    assert status.error == ""
    with pytest.raises(PortalError, match="No release has been published yet"):
        station.updates.start_download()


def test_offline_keeps_the_last_answer_and_local_images(tmp_path):
    replies = [Reply(200, release_body()), DROP, DROP]
    with FaultServer(*replies) as server:
        station = make_station(tmp_path, server.url, "token")
        (station.settings.recommended_dir / "FlashingApp_v1.0.0.img").write_bytes(b"x")
        (station.settings.recommended_dir / "FlashingApp_v1.0.0.img.sha256").write_text(
            hashlib.sha256(b"x").hexdigest() + "  FlashingApp_v1.0.0.img\n"
        )
        with station.client:
            online = station.updates.check()
            offline = station.updates.check()

    assert not online.offline
    assert offline.offline
    assert offline.offline_since is not None
    assert offline.error.startswith("Portal unreachable since")
    assert offline.latest == online.latest
    assert offline.local == (Version.parse("v1.0.0"),)
    assert offline.update_available
    with station.library.reading(Version.parse("v1.0.0")) as image:
        assert image.path.read_bytes() == b"x"


def test_without_a_portal_only_local_images_are_used(tmp_path):
    settings = config.load(tmp_path, environ={})
    settings.make_dirs()
    shelf = Library(settings.recommended_dir, settings.quarantine_dir)
    updates = Updates(
        shelf, Downloader(settings.staging_dir), None, staging_dir=settings.staging_dir
    )

    status = updates.check()

    assert "No portal is set up" in status.error
    assert not status.update_available
    with pytest.raises(PortalError, match="api_base_url"):
        updates.start_download()


@pytest.mark.parametrize(("interval", "requests"), [("startup_only", 1), ("manual", 0)])
def test_startup_tidies_the_library_and_checks_unless_manual(
    tmp_path, interval, requests
):
    with FaultServer(Reply(200, release_body())) as server:
        station = make_station(tmp_path, server.url, "token")
        orphan = station.settings.recommended_dir / "FlashingApp_v1.0.0.img"
        orphan.write_bytes(b"no checksum")
        with station.client:
            status = station.updates.startup(interval)

    assert len(server.seen) == requests
    assert (status.latest is not None) == (interval == "startup_only")
    assert not orphan.exists()
    assert (station.settings.quarantine_dir / orphan.name).exists()


def test_startup_keeps_no_more_images_than_the_setting_allows(tmp_path):
    # Four images from before the setting was lowered to three.
    station = make_station(tmp_path, "http://127.0.0.1:9", "token")
    roomy = Library(station.library.folder, station.library.quarantine_dir, keep=4)
    for version in ("v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0"):
        add(roomy, tmp_path / "staging", version)
    assert len(station.library.versions()) == 4

    with station.client:
        status = station.updates.startup("manual")

    assert names(station.library) == ["v1.3.0", "v1.2.0", "v1.1.0"]
    assert [str(v) for v in status.local] == ["v1.3.0", "v1.2.0", "v1.1.0"]


def test_starting_a_download_while_offline_marks_the_status_offline(
    tmp_path, refused_url
):
    station = make_station(tmp_path, refused_url, "token")

    with station.client, pytest.raises(PortalOffline):
        station.updates.start_download()

    status = station.updates.status()
    assert status.offline
    assert status.error.startswith("Portal unreachable since")
    assert status.download is None
