"""A stop (the station shutting down) keeps the partial download for next time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kiosk.downloads import Downloader, Progress
from kiosk.errors import DownloadStopped
from kiosk.library import Library
from kiosk.portal_client import PortalClient
from kiosk.updates import DownloadState, Updates, UpdateStatus
from kiosk.versions import Version
from tests.kiosk import portal_fixtures
from tests.kiosk.conftest import DOWNLOAD_IMAGE, DOWNLOAD_SHA256, fast_downloader
from tests.kiosk.faulty_server import FaultyServer
from tests.kiosk.portal_fixtures import FaultServer, Reply, release_body

refused_url = portal_fixtures.refused_url

NAME = "FlashingApp_v1.2.3.img"
SIZE = len(DOWNLOAD_IMAGE)
V123 = Version.parse("v1.2.3")
LATEST = release_body(file_size=SIZE, checksum=f"sha256:{DOWNLOAD_SHA256}")


def stop_midway(engine: Downloader, server: FaultyServer) -> DownloadStopped:
    """Stop a throttled download once bytes have landed; what it raised."""
    server.plan.rate = 1024 * 1024
    stop = threading.Event()

    def stop_once_bytes_landed(event: Progress) -> None:
        if event.done > 0:
            stop.set()

    with pytest.raises(DownloadStopped) as caught:
        engine.download(
            NAME,
            server.url,
            SIZE,
            DOWNLOAD_SHA256,
            progress=stop_once_bytes_landed,
            stop=stop,
        )
    server.plan = type(server.plan)()
    server.seen.clear()
    return caught.value


def fetched(server: FaultyServer) -> int:
    return sum(
        int(end) - int(start) + 1
        for start, end in (
            seen.range.removeprefix("bytes=").split("-")
            for seen in server.seen
            if seen.range
        )
    )


def test_a_stop_keeps_the_partial_file_and_its_state(
    faulty_server: FaultyServer, download_engine: Downloader, download_staging: Path
):
    stopped = stop_midway(download_engine, faulty_server)

    kept = download_engine.partial(NAME, SIZE)
    assert 0 < kept < SIZE
    assert stopped.message == (
        f"The download of {NAME} stopped with the station; it carries on "
        f"from {kept * 100 // SIZE} % at the next start."
    )
    assert sorted(p.name for p in download_staging.iterdir()) == [
        f"{NAME}.part",
        f"{NAME}.resume.json",
    ]


def test_the_next_download_carries_on_from_the_stop_and_verifies(
    faulty_server: FaultyServer, download_engine: Downloader, download_staging: Path
):
    stop_midway(download_engine, faulty_server)
    kept = download_engine.partial(NAME, SIZE)
    events: list[Progress] = []

    path = download_engine.download(
        NAME, faulty_server.url, SIZE, DOWNLOAD_SHA256, progress=events.append
    )

    assert path.read_bytes() == DOWNLOAD_IMAGE
    assert events[0].resumed_from == kept
    # Each chunk cut by the stop is asked again from the start of its last block.
    assert SIZE - kept <= fetched(faulty_server) < SIZE - kept + 4096 * 4
    assert sorted(p.name for p in download_staging.iterdir()) == [NAME]


def test_a_stop_before_the_start_touches_nothing(
    faulty_server: FaultyServer, download_engine: Downloader, download_staging: Path
):
    stop = threading.Event()
    stop.set()

    with pytest.raises(DownloadStopped):
        download_engine.download(
            NAME, faulty_server.url, SIZE, DOWNLOAD_SHA256, stop=stop
        )

    assert faulty_server.seen == []
    assert not download_staging.exists()


def test_a_stop_while_a_staged_file_is_checked_keeps_it(
    faulty_server: FaultyServer, download_staging: Path
):
    # What a kill after verifying but before the library took the file leaves.
    download_staging.mkdir(parents=True)
    (download_staging / NAME).write_bytes(DOWNLOAD_IMAGE)
    engine = fast_downloader(download_staging)
    stop = threading.Event()

    with pytest.raises(DownloadStopped) as caught:
        engine.download(
            NAME,
            faulty_server.url,
            SIZE,
            DOWNLOAD_SHA256,
            progress=lambda _: stop.set(),
            stop=stop,
        )

    assert "checked again at the next start" in caught.value.message
    assert engine.partial(NAME, SIZE) == SIZE
    path = engine.download(NAME, faulty_server.url, SIZE, DOWNLOAD_SHA256)
    assert path.read_bytes() == DOWNLOAD_IMAGE
    assert faulty_server.seen == []


# The same through Updates, as the station uses it.


def grant(store: FaultyServer) -> Reply:
    """The portal's answer to a download request: a fresh link to `store`."""
    body = {"download_url": store.url(), "expires_at": "2030-01-01T00:00:00Z"}
    return Reply(200, body)


@pytest.fixture
def make_updates(tmp_path: Path) -> Iterator[Callable[[str], Updates]]:
    """Updates for one station folder, talking to a portal; closed after."""
    made: list[Updates] = []

    def make(portal_url: str) -> Updates:
        staging = tmp_path / "temp" / "download_staging"
        library = Library(tmp_path / "recommended", tmp_path / "quarantine")
        for folder in (staging, library.folder, library.quarantine_dir):
            folder.mkdir(parents=True, exist_ok=True)
        client = PortalClient(portal_url, "token", sleep=lambda _: None, retries=1)
        updates = Updates(
            library, fast_downloader(staging), client, staging_dir=staging
        )
        made.append(updates)
        return updates

    yield make
    for updates in made:
        updates.cancel()
        updates.wait(30)
        assert updates.client is not None
        updates.client.close()


def shut_down_once_bytes_landed(updates: Updates) -> Callable[[UpdateStatus], None]:
    def listener(status: UpdateStatus) -> None:
        if status.download is not None and status.download.done > 0:
            updates.shutdown()

    return listener


def test_shutdown_stops_the_download_without_a_failure(
    faulty_server: FaultyServer,
    make_updates: Callable[[str], Updates],
    caplog: pytest.LogCaptureFixture,
):
    faulty_server.plan.rate = 1024 * 1024
    with FaultServer(Reply(200, LATEST), grant(faulty_server)) as portal:
        updates = make_updates(portal.url)
        updates.subscribe(shut_down_once_bytes_landed(updates))
        updates.start_download()
        status = updates.wait(30)

    assert status.download is not None
    assert status.download.state is DownloadState.STOPPED
    assert "stopped with the station" in status.download.error
    assert 0 < updates.downloader.partial(NAME, SIZE) < SIZE
    assert updates.library.versions() == []
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_the_next_start_carries_on_after_a_shutdown(
    faulty_server: FaultyServer, make_updates: Callable[[str], Updates]
):
    faulty_server.plan.rate = 1024 * 1024
    with FaultServer(Reply(200, LATEST), grant(faulty_server)) as portal:
        updates = make_updates(portal.url)
        updates.subscribe(shut_down_once_bytes_landed(updates))
        updates.start_download()
        updates.wait(30)
    kept = updates.downloader.partial(NAME, SIZE)
    faulty_server.plan.rate = None
    faulty_server.seen.clear()

    replies = Reply(200, LATEST), Reply(200, [LATEST]), grant(faulty_server)
    with FaultServer(*replies) as portal:
        restarted = make_updates(portal.url)
        restarted.check_and_resume()
        status = restarted.wait(30)

    assert status.download is not None
    assert status.download.state is DownloadState.DONE, status.download.error
    assert 0 < kept == status.download.resumed_from
    assert fetched(faulty_server) < SIZE - kept + 4096 * 4
    image = restarted.library.get(V123)
    assert image is not None
    assert image.path.read_bytes() == DOWNLOAD_IMAGE


def test_no_download_starts_after_a_shutdown(
    make_updates: Callable[[str], Updates], refused_url: str
):
    updates = make_updates(refused_url)
    updates.shutdown()

    with pytest.raises(DownloadStopped, match="station is stopping"):
        updates.start_download()

    assert updates.status().download is None
