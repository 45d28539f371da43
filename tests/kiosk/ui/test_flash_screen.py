"""Flash screen: two loop drives, one failing its read-back, verdicts that stay.

Targets are real loop devices (root only). smartctl cannot identify a loop
device, so a stand-in replays a recorded Samsung T7's answer; the second drive
is damaged between the write and the verify pass, as a failing drive would be.
"""

import os
import threading
from contextlib import ExitStack

import pytest

from kiosk.flashing import Flasher
from kiosk.library import Library
from kiosk.versions import Version
from tests.kiosk.drive_fixtures import (
    install_smartctl_stand_in,
    loop_target,
    make_image,
    recording,
)
from tests.kiosk.ui.conftest import make_station, screens

pytestmark = pytest.mark.anyio

SIZE = 8 * 2**20 + 4096
WAIT = 300
T7_SERIAL = "S6WBNS0T812345A"


def damage(target: str) -> None:
    """Flip a byte on the medium after it was written, before it is read back."""
    fd = os.open(target, os.O_RDWR)
    try:
        old = os.pread(fd, 1, 2**20)
        os.pwrite(fd, bytes([old[0] ^ 0xFF]), 2**20)
        os.fsync(fd)
    finally:
        os.close(fd)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    data = tmp_path / "station"
    library = Library(data / "recommended", data / "quarantine")
    image, digest = make_image(tmp_path, SIZE)
    library.add(image, Version.parse("v1.2.3"), digest)
    image.unlink(missing_ok=True)
    install_smartctl_stand_in(
        tmp_path / "smartctl", monkeypatch, output=recording("samsung_t7_asmedia.json")
    )
    return data


async def test_two_drives_one_failing_show_pass_and_fail_until_removed(
    data_dir, tmp_path
):
    with ExitStack() as drives:
        good = drives.enter_context(loop_target(tmp_path, SIZE, "good"))
        bad = drives.enter_context(loop_target(tmp_path, SIZE, "bad"))
        flasher = Flasher(
            before_verify=lambda target: damage(target) if target == bad else None
        )
        station = make_station(data_dir, flasher, allow_loop_targets="1")
        async with screens(station) as user:
            await user.open("/")
            await user.should_see(marker=f"flash:{good}", retries=WAIT)
            await user.should_see(marker=f"flash:{bad}", retries=WAIT)
            await user.should_see("v1.2.3 — verified", retries=WAIT)

            for device in (good, bad):
                user.find(marker=f"flash:{device}").click()
                await user.should_see("Write v1.2.3 to 1 drive(s)?")
                await user.should_see(f"serial {T7_SERIAL}")
                user.find(marker="confirm-flash").click()

            await user.should_see("PASS", retries=WAIT)
            await user.should_see("FAIL", retries=WAIT)
            with user.scope(marker=f"bay:{good}"):
                await user.should_see("PASS")
                await user.should_see("Safe to remove")
            with user.scope(marker=f"bay:{bad}"):
                await user.should_see("FAIL")
                await user.should_see("did not give the image")
                await user.should_see("Safe to remove")

            drives.close()  # both drives are pulled out

            await user.should_not_see(marker=f"bay:{good}", retries=WAIT)
            await user.should_not_see(marker=f"bay:{bad}", retries=WAIT)

    statuses = sorted(r.status for r in station.flash_log.records())
    assert statuses == ["failed", "passed"]


async def test_flash_all_names_every_drive_and_stop_cancels(data_dir, tmp_path):
    gate = threading.Event()

    def hold(target: str) -> None:
        gate.wait(30)

    flasher = Flasher(before_verify=hold)
    with ExitStack() as drives:
        first = drives.enter_context(loop_target(tmp_path, SIZE, "first"))
        second = drives.enter_context(loop_target(tmp_path, SIZE, "second"))
        station = make_station(data_dir, flasher, allow_loop_targets="1")
        async with screens(station) as user:
            await user.open("/")
            await user.should_see(marker=f"flash:{second}", retries=WAIT)
            await user.should_see("v1.2.3 — verified", retries=WAIT)

            user.find(marker="flash-all").click()
            for device in (first, second):
                number = device.removeprefix("/dev/loop")
                name = "first" if device == first else "second"
                slot = f"Loop {number} ({name}.backing)"
                await user.should_see(f"{slot}: Samsung PSSD T7 · 8.4 MB · serial")
            user.find("Cancel").click()
            assert all(not bay.running for bay in station.bays())

            user.find(marker=f"flash:{first}").click()
            user.find(marker="confirm-flash").click()
            await user.should_see(marker=f"stop:{first}", retries=WAIT)
            user.find(marker=f"stop:{first}").click()
            gate.set()

            await user.should_see("CANCELLED", retries=WAIT)
            await user.should_see("Safe to remove")
    assert [r.status for r in station.flash_log.records()] == ["cancelled"]


async def test_a_drive_too_small_for_the_image_says_so_and_is_left_out(
    data_dir, tmp_path
):
    with ExitStack() as drives:
        good = drives.enter_context(loop_target(tmp_path, SIZE, "good"))
        small = drives.enter_context(loop_target(tmp_path, SIZE // 2, "small"))
        station = make_station(data_dir, allow_loop_targets="1")
        async with screens(station) as user:
            await user.open("/")
            await user.should_see(marker=f"flash:{good}", retries=WAIT)
            await user.should_see("v1.2.3 — verified", retries=WAIT)
            await user.should_see("Too small for v1.2.3", retries=WAIT)
            with user.scope(marker=f"bay:{small}"):
                await user.should_see("Not offered")
                await user.should_see("Too small for v1.2.3")
                await user.should_see("Use a larger drive.")
            await user.should_not_see(marker=f"flash:{small}")
            user.find(marker="flash-all").click()
            await user.should_see("Write v1.2.3 to 1 drive(s)?")
            user.find(marker="confirm-flash").click()
            await user.should_see("PASS", retries=WAIT)

    records = station.flash_log.records()
    assert [(r.device, r.status) for r in records] == [(good, "passed")]
