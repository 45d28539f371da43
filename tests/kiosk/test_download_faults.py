"""Every misbehaviour of the store ends in a verified file or a clear error."""

from __future__ import annotations

import time
from email.utils import formatdate
from pathlib import Path

import pytest

from kiosk.downloads import Downloader
from kiosk.errors import CorruptedDownload, DownloadError, PortalOffline
from tests.kiosk.conftest import DOWNLOAD_IMAGE, DOWNLOAD_SHA256, fast_downloader
from tests.kiosk.faulty_server import Fault, FaultyServer

NAME = "FlashingApp_v1.2.3.img"
SIZE = len(DOWNLOAD_IMAGE)
CHUNK = 256 * 1024


def download(engine: Downloader, server: FaultyServer) -> Path:
    return engine.download(NAME, server.url, SIZE, DOWNLOAD_SHA256)


def starts(server: FaultyServer) -> list[int]:
    return [
        int(seen.range.removeprefix("bytes=").split("-")[0])
        for seen in server.seen
        if seen.range
    ]


def test_resumes_after_connection_drop(
    faulty_server: FaultyServer, download_engine: Downloader
):
    faulty_server.fault(Fault("drop", after=100_000), Fault("drop", after=5))

    path = download(download_engine, faulty_server)

    assert path.read_bytes() == DOWNLOAD_IMAGE
    # The rest of chunk 0 from the block holding the break, not all of it.
    assert 100_000 // 4096 * 4096 in starts(faulty_server)


def test_resumes_after_a_stall(faulty_server: FaultyServer, download_staging: Path):
    faulty_server.fault(Fault("stall", after=70_000))
    engine = fast_downloader(download_staging, stall_timeout=0.2)

    path = download(engine, faulty_server)

    assert path.read_bytes() == DOWNLOAD_IMAGE
    assert 70_000 // 4096 * 4096 in starts(faulty_server)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_retries_server_errors_until_the_store_recovers(
    faulty_server: FaultyServer, download_engine: Downloader, status: int
):
    faulty_server.fault(*[Fault("status", status=status)] * 3)

    path = download(download_engine, faulty_server)

    assert path.read_bytes() == DOWNLOAD_IMAGE


def test_honours_retry_after_on_429(faulty_server: FaultyServer, download_staging):
    pauses: list[float] = []
    engine = fast_downloader(download_staging, pause=pauses.append)
    faulty_server.fault(Fault("status", status=429, retry_after="7"))

    path = download(engine, faulty_server)

    assert path.read_bytes() == DOWNLOAD_IMAGE
    assert pauses == [7.0]


def test_honours_retry_after_given_as_an_http_date(
    faulty_server: FaultyServer, download_staging: Path
):
    pauses: list[float] = []
    engine = fast_downloader(download_staging, pause=pauses.append)
    later = formatdate(time.time() + 90, usegmt=True)
    faulty_server.fault(Fault("status", status=503, retry_after=later))

    path = download(engine, faulty_server)

    assert path.read_bytes() == DOWNLOAD_IMAGE
    [pause] = pauses
    # Whole seconds in the date, and a busy machine may take a while to ask.
    assert 30 <= pause <= 90


def test_backs_off_exponentially_with_jitter(
    faulty_server: FaultyServer, download_staging: Path
):
    pauses: list[float] = []
    engine = fast_downloader(
        download_staging, segments=1, backoff=1.0, pause=pauses.append
    )
    faulty_server.fault(*[Fault("status", status=503)] * 4)

    download(engine, faulty_server)

    assert len(pauses) == 4
    for attempt, pause in enumerate(pauses):
        assert 2**attempt / 2 <= pause <= 2**attempt


def test_gives_up_as_offline_after_the_retries(
    faulty_server: FaultyServer, download_staging: Path
):
    engine = fast_downloader(download_staging, max_retries=3)
    faulty_server.fault(*[Fault("status", status=503)] * 50)

    with pytest.raises(PortalOffline) as caught:
        download(engine, faulty_server)

    assert "Could not reach the file store" in caught.value.message


def test_gives_up_as_offline_when_nothing_listens(download_staging: Path):
    engine = fast_downloader(download_staging, max_retries=2)
    with FaultyServer(b"") as gone:
        url = gone.url()

    with pytest.raises(PortalOffline):
        engine.download(NAME, lambda: url, SIZE, DOWNLOAD_SHA256)


def test_does_not_retry_other_client_errors(
    faulty_server: FaultyServer, download_engine: Downloader
):
    faulty_server.fault(Fault("status", status=404))

    with pytest.raises(DownloadError) as caught:
        download(download_engine, faulty_server)

    assert "HTTP 404" in caught.value.message
    assert len(faulty_server.seen) == 1


def test_starts_over_when_the_store_answers_a_range_with_200(
    faulty_server: FaultyServer, download_engine: Downloader
):
    faulty_server.fault(Fault("drop", after=50_000), Fault("ignore_range"))

    path = download(download_engine, faulty_server)

    assert path.read_bytes() == DOWNLOAD_IMAGE


def test_falls_back_to_one_stream_when_ranges_are_ignored(
    faulty_server: FaultyServer, download_engine: Downloader
):
    faulty_server.plan.ignore_ranges = True

    path = download(download_engine, faulty_server)

    assert path.read_bytes() == DOWNLOAD_IMAGE
    assert faulty_server.seen[-1].range == f"bytes=0-{SIZE - 1}"


def test_unwraps_a_chunked_whole_file_answer(
    faulty_server: FaultyServer, download_engine: Downloader
):
    faulty_server.plan.ignore_ranges = True
    faulty_server.plan.chunked = True

    path = download(download_engine, faulty_server)

    assert path.read_bytes() == DOWNLOAD_IMAGE


def test_retries_a_wrong_content_range(
    faulty_server: FaultyServer, download_engine: Downloader
):
    faulty_server.fault(Fault("wrong_range"))

    path = download(download_engine, faulty_server)

    assert path.read_bytes() == DOWNLOAD_IMAGE


def test_a_store_that_keeps_sending_wrong_ranges_is_an_error(
    faulty_server: FaultyServer, download_staging: Path
):
    engine = fast_downloader(download_staging, max_retries=2)
    faulty_server.fault(*[Fault("wrong_range")] * 100)

    with pytest.raises(DownloadError) as caught:
        download(engine, faulty_server)

    assert "wrong part" in caught.value.message
    assert not isinstance(caught.value, PortalOffline)
    assert engine.partial(NAME) == 0  # no wrongly placed byte is claimed


def test_asks_for_a_new_link_when_it_expires_mid_download(
    faulty_server: FaultyServer, download_engine: Downloader
):
    calls: list[str] = []

    def url() -> str:
        calls.append(faulty_server.url())
        return calls[-1]

    faulty_server.fault(Fault("expire", after=1000))

    path = download_engine.download(NAME, url, SIZE, DOWNLOAD_SHA256)

    assert path.read_bytes() == DOWNLOAD_IMAGE
    assert len(calls) == 2  # four connections, one new link
    refused = [seen for seen in faulty_server.seen if seen.token == "1"]
    assert refused  # the old link was refused, then the new one continued
    assert any(s.token == "2" for s in faulty_server.seen)


def test_a_link_refused_even_when_new_is_an_error(
    faulty_server: FaultyServer, download_engine: Downloader
):
    stale = faulty_server.url().replace("token=1", "token=0")

    with pytest.raises(DownloadError) as caught:
        download_engine.download(NAME, lambda: stale, SIZE, DOWNLOAD_SHA256)

    assert "refused the download link" in caught.value.message


def test_a_store_file_of_another_size_is_refused_on_416(
    faulty_server: FaultyServer, download_engine: Downloader, download_staging: Path
):
    faulty_server.data = DOWNLOAD_IMAGE[: CHUNK * 4]

    with pytest.raises(CorruptedDownload):
        download(download_engine, faulty_server)

    assert list(download_staging.iterdir()) == []
