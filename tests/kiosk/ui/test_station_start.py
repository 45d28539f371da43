"""What a station does by itself when it starts after a crash."""

import hashlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from kiosk.updates import DownloadState
from kiosk.versions import Version
from tests.kiosk.ui.conftest import RELEASE_IMAGE, ReleaseServer, make_station

ROOT = Path(__file__).resolve().parents[3]
V123 = Version.parse("v1.2.3")


def eventually(check: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def kill_a_download_midway(url: str, staging: Path) -> None:
    """Download in a process of its own and SIGKILL it once it saved its state."""
    sha256 = hashlib.sha256(RELEASE_IMAGE).hexdigest()
    arguments = [url, str(len(RELEASE_IMAGE)), sha256, str(staging)]
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.kiosk.download_child", *arguments], cwd=ROOT
    )
    state = staging / f"{V123.image_name}.resume.json"
    try:
        eventually(lambda: state.exists() and state.stat().st_size > 0)
        time.sleep(0.3)  # a few more checkpoints
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)


def test_a_download_killed_midway_carries_on_when_the_station_starts(
    tmp_path, release_server: ReleaseServer
):
    store = release_server.catalogue.image
    store.plan.rate = 2 * 2**20  # per connection: the kill lands midway
    data = tmp_path / "station"
    station = make_station(
        data, api_base_url=release_server.url, check_interval="startup_only"
    )
    kill_a_download_midway(store.url(), station.settings.staging_dir)
    kept = station.updates.downloader.partial(V123.image_name)
    assert 0 < kept < len(RELEASE_IMAGE)
    store.plan.rate = None  # full speed from here on

    station.start()
    try:
        eventually(lambda: V123 in station.updates.status().local)
        download = station.updates.status().download
    finally:
        station.stop()

    assert download is not None
    assert download.state is DownloadState.DONE
    assert download.resumed_from >= kept
    image = station.library.get(V123)
    assert image is not None
    assert image.path.read_bytes() == RELEASE_IMAGE
