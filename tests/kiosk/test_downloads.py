"""The download engine's main path: verified files, progress, cancel, discard."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk import downloads
from kiosk.downloads import Downloader, Progress
from kiosk.errors import CorruptedDownload, DownloadCancelled, DownloadError
from tests.kiosk.conftest import DOWNLOAD_IMAGE, DOWNLOAD_SHA256, fast_downloader
from tests.kiosk.faulty_server import Fault, FaultyServer

NAME = "FlashingApp_v1.2.3.img"
SIZE = len(DOWNLOAD_IMAGE)


def test_downloads_a_verified_file_into_staging(
    faulty_server: FaultyServer, download_engine: Downloader, download_staging: Path
):
    path = download_engine.download(NAME, faulty_server.url, SIZE, DOWNLOAD_SHA256)

    assert path == download_staging / NAME
    assert path.read_bytes() == DOWNLOAD_IMAGE
    assert sorted(p.name for p in download_staging.iterdir()) == [NAME]


def test_fetches_chunks_in_parallel_with_ranges(
    faulty_server: FaultyServer, download_engine: Downloader
):
    download_engine.download(NAME, faulty_server.url, SIZE, DOWNLOAD_SHA256)

    ranges = sorted(
        int(seen.range.removeprefix("bytes=").split("-")[0])
        for seen in faulty_server.seen
        if seen.range
    )
    assert ranges == list(range(0, SIZE, 256 * 1024))
    assert all(seen.if_range == '"v1"' for seen in faulty_server.seen[1:])


def test_single_segment_downloads_the_same_bytes(
    faulty_server: FaultyServer, download_staging: Path
):
    downloader = fast_downloader(download_staging, segments=1, chunk_size=1 << 30)

    path = downloader.download(NAME, faulty_server.url, SIZE, DOWNLOAD_SHA256)

    assert hashlib.sha256(path.read_bytes()).hexdigest() == DOWNLOAD_SHA256
    assert [seen.range for seen in faulty_server.seen] == [f"bytes=0-{SIZE - 1}"]


def test_writes_through_the_page_cache_where_o_direct_is_refused(
    faulty_server: FaultyServer,
    download_engine: Downloader,
    monkeypatch: pytest.MonkeyPatch,
):
    @contextlib.contextmanager
    def refused(path: Path) -> Iterator[None]:
        yield None

    monkeypatch.setattr(downloads, "_opened_direct", refused)
    faulty_server.fault(Fault("drop", after=5000))  # an unaligned tail, too

    path = download_engine.download(NAME, faulty_server.url, SIZE, DOWNLOAD_SHA256)

    assert path.read_bytes() == DOWNLOAD_IMAGE


def test_reports_throttled_progress_up_to_the_total(
    faulty_server: FaultyServer, download_engine: Downloader
):
    faulty_server.plan.rate = 4 * 1024 * 1024
    events: list[Progress] = []

    download_engine.download(
        NAME, faulty_server.url, SIZE, DOWNLOAD_SHA256, progress=events.append
    )

    assert events[0].done == 0
    assert events[-1].done == events[-1].total == SIZE
    assert [e.done for e in events] == sorted(e.done for e in events)
    assert 3 <= len(events) <= 15  # about 0.2 s at ten events a second at most
    assert any(e.speed > 0 and e.eta is not None for e in events[1:-1])
    assert {e.resumed_from for e in events} == {0}


def test_wrong_bytes_are_a_corrupted_download_and_leave_nothing(
    faulty_server: FaultyServer, download_engine: Downloader, download_staging: Path
):
    faulty_server.plan.corrupt_at = SIZE // 2

    with pytest.raises(CorruptedDownload) as caught:
        download_engine.download(NAME, faulty_server.url, SIZE, DOWNLOAD_SHA256)

    assert "Corrupted download" in caught.value.message
    assert list(download_staging.iterdir()) == []


def test_wrong_size_is_a_corrupted_download(
    faulty_server: FaultyServer, download_engine: Downloader, download_staging: Path
):
    with pytest.raises(CorruptedDownload):
        download_engine.download(NAME, faulty_server.url, SIZE + 1, DOWNLOAD_SHA256)

    assert list(download_staging.iterdir()) == []


def test_cancel_removes_the_partial_file_and_state(
    faulty_server: FaultyServer, download_engine: Downloader, download_staging: Path
):
    faulty_server.plan.rate = 1024 * 1024
    cancel = threading.Event()

    def cancel_midway(event: Progress) -> None:
        if event.done > 0:
            cancel.set()

    with pytest.raises(DownloadCancelled) as caught:
        download_engine.download(
            NAME,
            faulty_server.url,
            SIZE,
            DOWNLOAD_SHA256,
            progress=cancel_midway,
            cancel=cancel,
        )

    assert "cancelled" in caught.value.message
    assert list(download_staging.iterdir()) == []
    assert download_engine.partial(NAME, SIZE) == 0


def test_discard_forgets_a_partial_download(
    faulty_server: FaultyServer, download_staging: Path
):
    faulty_server.plan.rate = 2 * 1024 * 1024
    engine = fast_downloader(download_staging, timeout=0.3)
    with pytest.raises(DownloadError) as caught:
        engine.download(NAME, faulty_server.url, SIZE, DOWNLOAD_SHA256)
    assert "did not finish in time" in caught.value.message
    assert 0 < engine.partial(NAME, SIZE) < SIZE

    engine.discard(NAME)

    assert engine.partial(NAME, SIZE) == 0
    assert list(download_staging.iterdir()) == []


def test_a_second_download_of_the_same_name_is_refused(
    faulty_server: FaultyServer, download_engine: Downloader
):
    faulty_server.plan.rate = 2 * 1024 * 1024
    started = threading.Event()
    results: list[object] = []

    def first() -> None:
        results.append(
            download_engine.download(
                NAME,
                faulty_server.url,
                SIZE,
                DOWNLOAD_SHA256,
                progress=lambda _: started.set(),
            )
        )

    worker = threading.Thread(target=first)
    worker.start()
    started.wait(5)
    with pytest.raises(DownloadError) as caught:
        download_engine.download(NAME, faulty_server.url, SIZE, DOWNLOAD_SHA256)
    worker.join(30)

    assert "already being downloaded" in caught.value.message
    assert results == [download_engine.staging_dir / NAME]


@pytest.mark.parametrize("name", ["", "..", "a/b", "../FlashingApp_v1.img"])
def test_refuses_names_that_are_paths(download_engine: Downloader, name: str):
    with pytest.raises(ValueError, match="file name"):
        download_engine.download(name, lambda: "http://x", 1, "0" * 64)
