"""A download that stopped continues from its persisted state."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest

from kiosk.downloads import Downloader, Progress
from kiosk.errors import DownloadCancelled, PortalOffline
from tests.kiosk.conftest import DOWNLOAD_IMAGE, DOWNLOAD_SHA256, fast_downloader
from tests.kiosk.faulty_server import Fault, FaultyServer

NAME = "FlashingApp_v1.2.3.img"
SIZE = len(DOWNLOAD_IMAGE)


def stop_halfway(engine: Downloader, server: FaultyServer) -> int:
    """Let about half the image land, then make the store unreachable."""
    server.plan.rate = 4 * 1024 * 1024
    server.fault(*[Fault("drop", after=200_000)] * 4, *[Fault("status")] * 200)
    with pytest.raises(PortalOffline):
        engine.download(NAME, server.url, SIZE, DOWNLOAD_SHA256)
    server.plan = type(server.plan)()
    server.seen.clear()
    return engine.partial(NAME, SIZE)


def test_resumes_from_the_persisted_offsets(
    faulty_server: FaultyServer, download_staging: Path
):
    engine = fast_downloader(download_staging, max_retries=1)
    skipped = stop_halfway(engine, faulty_server)
    events: list[Progress] = []

    path = engine.download(
        NAME, faulty_server.url, SIZE, DOWNLOAD_SHA256, progress=events.append
    )

    assert 0 < skipped < SIZE
    assert path.read_bytes() == DOWNLOAD_IMAGE
    assert events[0].resumed_from == events[0].done == skipped
    fetched = sum(
        int(end) - int(start) + 1
        for start, end in (
            s.range.removeprefix("bytes=").split("-")
            for s in faulty_server.seen
            if s.range
        )
    )
    # Each broken chunk is asked again from the start of its last block.
    assert SIZE - skipped <= fetched < SIZE - skipped + 4096 * 4


def test_resume_asks_for_the_same_version_with_if_range(
    faulty_server: FaultyServer, download_staging: Path
):
    engine = fast_downloader(download_staging, max_retries=1)
    stop_halfway(engine, faulty_server)

    engine.download(NAME, faulty_server.url, SIZE, DOWNLOAD_SHA256)

    assert {s.if_range for s in faulty_server.seen} == {'"v1"'}


def test_starts_over_when_the_file_on_the_store_changed(
    faulty_server: FaultyServer, download_staging: Path
):
    engine = fast_downloader(download_staging, max_retries=1)
    stop_halfway(engine, faulty_server)
    faulty_server.etag = '"v2"'  # same bytes, but the store says it is new

    path = engine.download(NAME, faulty_server.url, SIZE, DOWNLOAD_SHA256)

    assert path.read_bytes() == DOWNLOAD_IMAGE
    assert faulty_server.seen[0].if_range == '"v1"'
    assert faulty_server.seen[-1].if_range == '"v2"'


def test_another_release_under_the_same_name_starts_fresh(
    faulty_server: FaultyServer, download_staging: Path
):
    engine = fast_downloader(download_staging, max_retries=1)
    stop_halfway(engine, faulty_server)
    state = download_staging / f"{NAME}.resume.json"
    assert json.loads(state.read_text())["sha256"] == DOWNLOAD_SHA256
    assert engine.partial(NAME, SIZE - 1) == 0  # its state is for another size
    other = DOWNLOAD_IMAGE[:-1]
    server_sha = hashlib.sha256(other).hexdigest()
    faulty_server.data = other

    path = engine.download(NAME, faulty_server.url, SIZE - 1, server_sha)

    assert path.read_bytes() == other
    assert faulty_server.seen[0].range == "bytes=0-262143"


def test_a_damaged_state_file_means_a_fresh_start(
    faulty_server: FaultyServer, download_staging: Path
):
    engine = fast_downloader(download_staging, max_retries=1)
    stop_halfway(engine, faulty_server)
    (download_staging / f"{NAME}.resume.json").write_text('{"size": ')

    assert engine.partial(NAME, SIZE) == 0
    path = engine.download(NAME, faulty_server.url, SIZE, DOWNLOAD_SHA256)

    assert path.read_bytes() == DOWNLOAD_IMAGE


def test_a_state_draft_left_by_a_kill_is_gone_after_the_download(
    faulty_server: FaultyServer, download_staging: Path
):
    engine = fast_downloader(download_staging, max_retries=1)
    stop_halfway(engine, faulty_server)
    # What a kill between writing the next state and renaming it leaves.
    (download_staging / f"{NAME}.resume.tmp").write_text('{"half": ')
    # No checkpoint during the rest, so no later save replaces the draft.
    engine = fast_downloader(download_staging, sync_interval=3600)

    engine.download(NAME, faulty_server.url, SIZE, DOWNLOAD_SHA256)

    assert sorted(p.name for p in download_staging.iterdir()) == [NAME]


def test_a_verified_file_still_in_staging_is_hashed_not_fetched(
    faulty_server: FaultyServer, download_staging: Path
):
    # What a kill after verifying but before the library took the file leaves.
    download_staging.mkdir(parents=True)
    (download_staging / NAME).write_bytes(DOWNLOAD_IMAGE)
    (download_staging / f"{NAME}.resume.json").write_text("{}")
    engine = fast_downloader(download_staging)
    assert engine.partial(NAME, SIZE) == SIZE
    events: list[Progress] = []

    path = engine.download(
        NAME, faulty_server.url, SIZE, DOWNLOAD_SHA256, progress=events.append
    )

    assert path.read_bytes() == DOWNLOAD_IMAGE
    assert faulty_server.seen == []
    assert events[-1].done == SIZE
    assert sorted(p.name for p in download_staging.iterdir()) == [NAME]


def test_a_damaged_file_left_in_staging_is_fetched_again(
    faulty_server: FaultyServer, download_staging: Path
):
    download_staging.mkdir(parents=True)
    damaged = bytearray(DOWNLOAD_IMAGE)
    damaged[SIZE // 2] ^= 0xFF
    (download_staging / NAME).write_bytes(damaged)
    engine = fast_downloader(download_staging)

    path = engine.download(NAME, faulty_server.url, SIZE, DOWNLOAD_SHA256)

    assert path.read_bytes() == DOWNLOAD_IMAGE
    assert faulty_server.seen != []
    assert sorted(p.name for p in download_staging.iterdir()) == [NAME]


def test_a_cancel_while_a_staged_file_is_checked_removes_it(
    faulty_server: FaultyServer, download_staging: Path
):
    download_staging.mkdir(parents=True)
    (download_staging / NAME).write_bytes(DOWNLOAD_IMAGE)
    engine = fast_downloader(download_staging)
    cancel = threading.Event()

    with pytest.raises(DownloadCancelled):
        engine.download(
            NAME,
            faulty_server.url,
            SIZE,
            DOWNLOAD_SHA256,
            progress=lambda _: cancel.set(),
            cancel=cancel,
        )

    assert list(download_staging.iterdir()) == []
    assert engine.partial(NAME, SIZE) == 0
    assert faulty_server.seen == []


def test_a_staged_file_of_another_size_saves_nothing(download_staging: Path):
    download_staging.mkdir(parents=True)
    (download_staging / NAME).write_bytes(DOWNLOAD_IMAGE[:-1])
    engine = fast_downloader(download_staging)

    assert engine.partial(NAME, SIZE) == 0
    assert engine.partial(NAME, SIZE - 1) == SIZE - 1
