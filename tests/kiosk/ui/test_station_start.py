"""What a station does by itself: resume after a crash, follow swapped drives."""

import hashlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from kiosk import config
from kiosk.smart import DriveIdentity
from kiosk.station import Station
from kiosk.updates import DownloadState
from kiosk.versions import Version
from tests.kiosk.drive_fixtures import loop_target
from tests.kiosk.ui.conftest import RELEASE_IMAGE, ReleaseServer, make_station

ROOT = Path(__file__).resolve().parents[3]
V123 = Version.parse("v1.2.3")


def eventually(check: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def written(state: Path) -> int:
    """Bytes the resume state vouches for; 0 before it is first saved."""
    try:
        return sum(json.loads(state.read_text())["written"])
    except (OSError, ValueError, KeyError):
        return 0


def kill_a_download_midway(url: str, staging: Path) -> None:
    """Download in a process of its own and SIGKILL it once it saved its state."""
    sha256 = hashlib.sha256(RELEASE_IMAGE).hexdigest()
    arguments = [url, str(len(RELEASE_IMAGE)), sha256, str(staging)]
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.kiosk.download_child", *arguments], cwd=ROOT
    )
    state = staging / f"{V123.image_name}.resume.json"
    try:
        eventually(lambda: written(state) > 0)  # the first bytes are on disk
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)


def test_a_download_killed_midway_carries_on_when_the_station_starts(
    tmp_path, release_server: ReleaseServer
):
    store = release_server.catalogue.image
    store.plan.rate = 256 * 2**10  # per connection: about 6 s in all
    data = tmp_path / "station"
    station = make_station(
        data, api_base_url=release_server.url, check_interval="startup_only"
    )
    kill_a_download_midway(store.url(), station.settings.staging_dir)
    kept = station.updates.downloader.partial(V123.image_name, len(RELEASE_IMAGE))
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


def test_a_drive_swapped_between_scans_gets_its_own_serial(tmp_path):
    # smartctl cannot identify a loop device; this reader names each drive by
    # its size, as a real one would by its serial.
    def read_identity(device: str, usb_id: str | None) -> DriveIdentity:
        size = Path(f"/sys/block/{Path(device).name}/size").read_text().strip()
        return DriveIdentity(f"SERIAL-{size}", "Loop", "1", int(size) * 512, None)

    settings = config.load(
        tmp_path / "station", environ={"KIOSK_ALLOW_LOOP_TARGETS": "1"}
    )
    station = Station(settings, use_udev=False, read_identity=read_identity)
    second = tmp_path / "second.backing"
    with open(second, "wb") as stream:
        stream.truncate(16 * 2**20)
    with loop_target(tmp_path, 8 * 2**20, "first") as device:
        station.refresh_drives()
        before = station.bay(device)
        # Pulled out and another drive plugged in before the next scan.
        subprocess.run(["losetup", "-d", device], timeout=30, check=True)
        subprocess.run(["losetup", device, str(second)], timeout=30, check=True)
        station.refresh_drives()
        after = station.bay(device)

    assert before is not None and after is not None
    assert before.serial == f"SERIAL-{8 * 2**20 // 512}"
    assert after.serial == f"SERIAL-{16 * 2**20 // 512}"
