"""Drive identity through smartctl: the real binary, and recorded answers.

This machine has no USB drives, so the answers of a Samsung T7 (NVMe behind
an ASMedia bridge), a Samsung T5 (SATA behind SAT), a failing drive and a
bridge smartctl does not know are replayed by a stand-in `smartctl` put first
on PATH. The real smartctl covers a missing device and a non-SMART device.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from kiosk import smart
from kiosk.errors import DriveError
from tests.kiosk.drive_fixtures import (
    install_smartctl_stand_in,
    loop_target,
    recording,
)

needs_smartctl = pytest.mark.skipif(
    shutil.which("smartctl") is None,
    reason="smartctl is not installed (apt-get install smartmontools)",
)


@pytest.mark.parametrize(
    ("usb_id", "kind"),
    [
        ("04e8:4001", "sntasmedia"),  # Samsung T7
        ("174c:2362", "sntasmedia"),
        ("174C:2364", "sntasmedia"),  # any other ASMedia, any case
        ("174c:55aa", "sat"),  # ASMedia SATA bridge
        ("0bda:9210", "sntrealtek"),
        ("152d:0583", "sntjmicron"),
        ("152d:0578", "sat"),
        ("04e8:61f5", "sat"),  # Samsung T5
        ("1234:5678", None),
        (None, None),
    ],
)
def test_bridge_type_follows_the_usb_id(usb_id: str | None, kind: str | None) -> None:
    assert smart.bridge_type(usb_id) == kind


def test_exit_status_bits_have_plain_meanings() -> None:
    assert smart.exit_status_meaning(0) == []
    assert smart.exit_status_meaning(2) == ["the device could not be opened"]
    assert smart.exit_status_meaning(72) == [
        "the drive reports that it is failing",
        "the drive's error log has entries",
    ]


def test_reads_a_t7_behind_an_asmedia_bridge(tmp_path: Path, monkeypatch) -> None:
    argv = install_smartctl_stand_in(
        tmp_path / "bin", monkeypatch, output=recording("samsung_t7_asmedia.json")
    )

    identity = smart.read_identity("/dev/sdb", "04e8:4001")

    assert argv.read_text() == "--json -i -d sntasmedia /dev/sdb"
    assert identity == smart.DriveIdentity(
        serial="S6WBNS0T812345A",
        model="Samsung PSSD T7",
        firmware="3B2QFXH7",
        capacity_bytes=1000204886016,
        smartctl_type="sntasmedia",
    )


def test_reads_a_t5_through_sat(tmp_path: Path, monkeypatch) -> None:
    argv = install_smartctl_stand_in(
        tmp_path / "bin", monkeypatch, output=recording("samsung_t5_sat.json")
    )

    identity = smart.read_identity("/dev/sdc", "04e8:61f5")

    assert argv.read_text() == "--json -i -d sat /dev/sdc"
    assert identity.serial == "S49WNP0N120045K"
    assert identity.model == "Samsung Portable SSD T5"
    assert identity.firmware == "MVT41P1Q"
    assert identity.capacity_bytes == 500107862016
    assert identity.health_warnings == ()


def test_a_failing_drive_is_identified_with_its_warnings(
    tmp_path: Path, monkeypatch
) -> None:
    install_smartctl_stand_in(
        tmp_path / "bin",
        monkeypatch,
        output=recording("failing_sat.json"),
        exit_status=72,
    )

    identity = smart.read_identity("/dev/sdd", "04e8:61f5")

    assert identity.serial == "S49WNP0N330871B"
    assert "the drive reports that it is failing" in identity.health_warnings


def test_an_unknown_bridge_gives_no_serial_and_no_type(
    tmp_path: Path, monkeypatch
) -> None:
    argv = install_smartctl_stand_in(
        tmp_path / "bin",
        monkeypatch,
        output=recording("unsupported_bridge.json"),
        exit_status=4,
    )

    identity = smart.read_identity("/dev/sde", "1234:5678")

    assert argv.read_text() == "--json -i /dev/sde"
    assert identity.serial is None
    assert identity.capacity_bytes == 1000204886016
    refusal = smart.flash_refusal(identity, allow_without_serial=False)
    assert refusal is not None and "serial number cannot be read" in refusal
    assert smart.flash_refusal(identity, allow_without_serial=True) is None


def test_garbage_output_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    install_smartctl_stand_in(
        tmp_path / "bin", monkeypatch, output=recording("garbage.txt"), exit_status=0
    )

    with pytest.raises(DriveError, match="cannot be read; update smartmontools"):
        smart.read_identity("/dev/sdb", "04e8:4001")


def test_a_hanging_smartctl_is_killed_after_the_timeout(
    tmp_path: Path, monkeypatch
) -> None:
    install_smartctl_stand_in(
        tmp_path / "bin",
        monkeypatch,
        output=recording("samsung_t7_asmedia.json"),
        sleep=30,
    )
    started = time.monotonic()

    with pytest.raises(DriveError, match=r"took longer than 0\.5 s"):
        smart.read_identity("/dev/sdb", "04e8:4001", timeout=0.5)

    assert time.monotonic() - started < 10


def test_missing_smartctl_says_to_install_smartmontools() -> None:
    with pytest.raises(DriveError, match="install smartmontools"):
        smart.read_identity("/dev/sdb", None, smartctl="no-such-smartctl")


@needs_smartctl
def test_real_smartctl_on_a_missing_device_says_it_cannot_be_opened() -> None:
    with pytest.raises(DriveError, match="could not be opened"):
        smart.read_identity("/dev/no-such-drive", "04e8:61f5")


@needs_smartctl
def test_real_smartctl_on_a_device_without_smart_is_refused(tmp_path: Path) -> None:
    with (
        loop_target(tmp_path, 8 * 1024 * 1024) as device,
        pytest.raises(DriveError, match="bridge may be unsupported"),
    ):
        smart.read_identity(device, None)


def test_no_identity_at_all_refuses_unless_allowed() -> None:
    assert smart.flash_refusal(None, allow_without_serial=False)
    assert smart.flash_refusal(None, allow_without_serial=True) is None
