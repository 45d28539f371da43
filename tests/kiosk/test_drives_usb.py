"""USB disks as lsblk lists them, replayed: this machine has no USB drives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kiosk import drives

GB = 10**9


def usb_disk(name: str, size: int, **extra: Any) -> dict[str, Any]:
    """One disk as `lsblk --json --bytes` describes a Samsung T7 on USB."""
    return {
        "name": name,
        "path": f"/dev/{name}",
        "type": "disk",
        "size": size,
        "model": "PSSD T7",
        "vendor": "Samsung ",
        "serial": "S6WBNS0T812345A",
        "tran": "usb",
        "rm": False,
        "hotplug": True,
        "ro": False,
        "mountpoints": [None],
        **extra,
    }


@pytest.fixture
def replayed_lsblk(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Stands in for lsblk: the test fills the list of disks it reports."""
    disks: list[dict[str, Any]] = []
    monkeypatch.setattr(drives, "_lsblk", lambda timeout: disks)
    return disks


def test_a_usb_disk_large_enough_is_offered(replayed_lsblk) -> None:
    replayed_lsblk.append(usb_disk("sdx", 1000 * GB))

    (drive,) = drives.candidates(image_size=24 * GB)

    assert drive.path == "/dev/sdx"
    assert drive.label == "sdx: Samsung PSSD T7, 1.0 TB"


def test_a_usb_disk_with_a_mounted_partition_is_refused(replayed_lsblk) -> None:
    partition = {"name": "sdx1", "type": "part", "mountpoints": ["/media/usb"]}
    replayed_lsblk.append(usb_disk("sdx", 1000 * GB, children=[partition]))

    (drive,) = drives.list_drives(image_size=24 * GB)

    assert drive.reason.startswith("It is in use, mounted at /media/usb;")


def test_a_write_protected_usb_disk_is_refused(replayed_lsblk) -> None:
    replayed_lsblk.append(usb_disk("sdx", 1000 * GB, ro=True))

    (drive,) = drives.list_drives(image_size=24 * GB)

    assert "write-protected" in drive.reason


def test_no_usb_disk_is_offered_when_the_data_disk_is_unknown(
    replayed_lsblk, tmp_path: Path
) -> None:
    replayed_lsblk.append(usb_disk("sdx", 1000 * GB))

    (drive,) = drives.list_drives(image_size=GB, data_dir=tmp_path / "missing")

    assert "cannot be identified, so no drive is offered" in drive.reason
