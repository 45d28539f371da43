"""Kiosk fixtures: a misbehaving file server, a staging folder, log handlers undone."""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.downloads import Downloader
from tests.kiosk.faulty_server import FaultyServer

DOWNLOAD_IMAGE = random.Random(3).randbytes(3 * 1024 * 1024 + 12345)
DOWNLOAD_SHA256 = hashlib.sha256(DOWNLOAD_IMAGE).hexdigest()


@pytest.fixture
def faulty_server() -> Iterator[FaultyServer]:
    """A file server on 127.0.0.1 serving DOWNLOAD_IMAGE, stopped after the test."""
    with FaultyServer(DOWNLOAD_IMAGE) as server:
        yield server


@pytest.fixture
def download_staging(tmp_path: Path) -> Path:
    return tmp_path / "temp" / "download_staging"


def fast_downloader(staging: Path, **options: object) -> Downloader:
    """A Downloader whose pauses, stalls and checkpoints take milliseconds."""
    settings: dict[str, Any] = {
        "chunk_size": 256 * 1024,
        "stall_timeout": 0.5,
        "backoff": 0.001,
        "sync_interval": 0.02,
        **options,
    }
    return Downloader(staging, **settings)


@pytest.fixture
def download_engine(download_staging: Path) -> Downloader:
    return fast_downloader(download_staging)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """main() installs the station's log handlers; take them off after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
