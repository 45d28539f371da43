"""Downloads from the real S3 engine (SeaweedFS) through presigned URLs."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from kiosk.downloads import Downloader, Progress
from kiosk.errors import CorruptedDownload, PortalOffline
from portal.releases import storage
from portal.releases.models import Release
from tests.kiosk.conftest import fast_downloader
from tests.kiosk.faulty_server import Fault, FaultyServer

pytestmark = pytest.mark.django_db(transaction=True)

NAME = "FlashingApp_v1.2.3.img"
IMAGE = random.Random(5).randbytes(5 * 1024 * 1024 + 777)


@pytest.fixture
def download_release(s3, make_release: Callable[..., Release]) -> Release:
    return make_release("v1.2.3", IMAGE)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def presigned(release: Release) -> Callable[[], str]:
    return lambda: storage.presign_download(release.storage_key, NAME).url


def engine(staging: Path, **options: object) -> Downloader:
    return fast_downloader(staging, chunk_size=1024 * 1024, **options)


def test_downloads_a_release_from_the_store(
    download_release: Release, download_staging: Path
):
    path = engine(download_staging).download(
        NAME, presigned(download_release), len(IMAGE), download_release.sha256
    )

    assert path.read_bytes() == IMAGE


def test_downloads_through_a_link_from_the_portal_api(
    download_release: Release, download_staging: Path, live_server, station_token
):
    calls = []

    def url() -> str:
        response = httpx.post(
            f"{live_server.url}/api/flash-images/download",
            json={"version": "v1.2.3"},
            headers={"Authorization": f"Bearer {station_token}"},
        )
        calls.append(response.status_code)
        return str(response.json()["download_url"])

    path = Downloader(download_staging).download(
        NAME, url, download_release.file_size, download_release.sha256
    )

    assert path.read_bytes() == IMAGE
    assert calls == [200]


def partial_download(downloader: Downloader, etag: str) -> int:
    """Leave a third of IMAGE in staging, as fetched from a store with `etag`."""
    with FaultyServer(IMAGE, etag=etag) as server:
        server.fault(*[Fault("drop", after=len(IMAGE) // 3)], *[Fault("status")] * 99)
        with pytest.raises(PortalOffline):
            downloader.download(NAME, server.url, len(IMAGE), sha256(IMAGE))
    return downloader.partial(NAME)


def test_resumes_from_the_store_with_if_range(
    download_release: Release, download_staging: Path, s3
):
    downloader = engine(download_staging, segments=1, max_retries=1)
    head = s3.client().head_object(Bucket="firmware", Key=download_release.storage_key)
    skipped = partial_download(downloader, head["ETag"])
    events: list[Progress] = []

    path = downloader.download(
        NAME,
        presigned(download_release),
        len(IMAGE),
        download_release.sha256,
        progress=events.append,
    )

    assert 0 < skipped < len(IMAGE)
    assert events[0].resumed_from == skipped
    assert path.read_bytes() == IMAGE


def test_starts_over_when_the_store_holds_another_version(
    download_release: Release, download_staging: Path, caplog
):
    downloader = engine(download_staging, segments=1, max_retries=1)
    partial_download(downloader, '"an-older-upload"')

    path = downloader.download(
        NAME, presigned(download_release), len(IMAGE), download_release.sha256
    )

    assert path.read_bytes() == IMAGE
    assert "starts over" in caplog.text


def test_a_refused_link_is_replaced_by_a_new_one(
    download_release: Release, download_staging: Path
):
    links = []

    def url() -> str:
        link = storage.presign_download(download_release.storage_key, NAME).url
        links.append(link)
        # The first link is tampered with, so the store refuses it with 403.
        return (
            link.replace("X-Amz-Signature=", "X-Amz-Signature=0")
            if len(links) == 1
            else link
        )

    path = engine(download_staging).download(
        NAME, url, len(IMAGE), download_release.sha256
    )

    assert path.read_bytes() == IMAGE
    assert len(links) == 2


def test_a_wrong_checksum_leaves_nothing_in_staging(
    download_release: Release, download_staging: Path
):
    with pytest.raises(CorruptedDownload):
        engine(download_staging).download(
            NAME, presigned(download_release), len(IMAGE), "0" * 64
        )

    assert list(download_staging.iterdir()) == []
