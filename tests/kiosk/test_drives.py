"""Which disks are offered as targets, and why the others are not."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kiosk import drives
from kiosk.errors import DriveError
from tests.kiosk.drive_fixtures import loop_target, mounted_loop

MiB = 1024 * 1024


def root_disk() -> str:
    """The whole disk holding `/`, found with findmnt and sysfs (not our code)."""
    source = subprocess.run(
        ["findmnt", "-n", "-o", "SOURCE", "/"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout.strip()
    if not source.startswith("/dev/"):
        pytest.skip(f"/ is not on a block device here ({source})")
    name = Path(os.path.realpath(source)).name
    node = Path("/sys/class/block", name).resolve()
    return node.parent.name if (node / "partition").exists() else name


def by_name(listing: list[drives.Drive], name: str) -> drives.Drive:
    matches = [drive for drive in listing if drive.name == name]
    assert matches, f"{name} is not in the list of drives"
    return matches[0]


def test_the_root_disk_is_never_offered() -> None:
    disk = root_disk()

    drive = by_name(drives.list_drives(image_size=1, allow_loop=True), disk)

    assert not drive.offered
    assert "system disk" in drive.reason and "(it holds /)" in drive.reason
    assert disk not in [d.name for d in drives.candidates(image_size=1)]


def test_the_root_disk_given_on_the_command_line_is_refused() -> None:
    disk = root_disk()

    with pytest.raises(DriveError, match="system disk"):
        drives.validate_target(f"/dev/{disk}", image_size=1)


def test_a_loop_device_is_offered_only_when_allowed(tmp_path: Path) -> None:
    with loop_target(tmp_path, 8 * MiB) as device:
        name = Path(device).name
        allowed = by_name(drives.list_drives(image_size=MiB, allow_loop=True), name)
        refused = by_name(drives.list_drives(image_size=MiB), name)

    assert allowed.offered
    assert allowed.slot == f"Loop {name.removeprefix('loop')} (disk.backing)"
    assert allowed.size == 8 * MiB
    assert "loop device" in refused.reason


@pytest.mark.parametrize(
    ("name", "shown"),
    [("café", "café"), (os.fsdecode(b"caf\xe9"), "caf\N{REPLACEMENT CHARACTER}")],
    ids=["utf-8", "latin-1"],
)
def test_a_backing_file_named_in_other_than_ascii_is_shown(
    tmp_path: Path, name: str, shown: str
) -> None:
    # A file name is any bytes but / and NUL; the second is not even UTF-8.
    with loop_target(tmp_path, 8 * MiB, name) as device:
        loop = Path(device).name
        drive = by_name(drives.list_drives(image_size=MiB, allow_loop=True), loop)

    assert drive.slot == f"Loop {loop.removeprefix('loop')} ({shown}.backing)"
    assert drive.offered


def test_a_deleted_backing_file_is_named_without_the_kernels_mark(
    tmp_path: Path,
) -> None:
    with loop_target(tmp_path, 8 * MiB) as device:
        (tmp_path / "disk.backing").unlink()
        loop = Path(device).name
        drive = by_name(drives.list_drives(image_size=MiB, allow_loop=True), loop)

    assert drive.slot == f"Loop {loop.removeprefix('loop')} (disk.backing)"


def test_a_drive_smaller_than_the_image_says_so(tmp_path: Path) -> None:
    with loop_target(tmp_path, 8 * MiB) as device:
        listing = drives.list_drives(image_size=24 * 10**9, allow_loop=True)
        drive = by_name(listing, Path(device).name)

    assert drive.reason == (
        "It holds 8.4 MB, but the image needs 24.0 GB; use a larger drive."
    )


def test_a_mounted_drive_is_not_offered(tmp_path: Path) -> None:
    with mounted_loop(tmp_path, 16 * MiB) as device:
        drive = by_name(
            drives.list_drives(image_size=MiB, allow_loop=True), Path(device).name
        )

    assert "mounted at" in drive.reason and str(tmp_path / "mnt") in drive.reason


def test_the_disk_holding_the_data_directory_is_not_offered(tmp_path: Path) -> None:
    with mounted_loop(tmp_path, 16 * MiB) as device:
        data_dir = tmp_path / "mnt" / "station"
        data_dir.mkdir()
        drive = by_name(
            drives.list_drives(image_size=MiB, data_dir=data_dir, allow_loop=True),
            Path(device).name,
        )

    assert f"(it holds {data_dir})" in drive.reason


def test_validates_a_loop_device_given_on_the_command_line(tmp_path: Path) -> None:
    with loop_target(tmp_path, 8 * MiB) as device:
        drive = drives.validate_target(device, image_size=MiB, allow_loop=True)
        with pytest.raises(DriveError, match="loop device"):
            drives.validate_target(device, image_size=MiB)
        with pytest.raises(DriveError, match="use a larger drive"):
            drives.validate_target(device, image_size=16 * MiB, allow_loop=True)

    assert drive.path == device


@pytest.mark.parametrize(
    ("path", "sentence"),
    [
        ("/dev/no-such-drive", "does not exist"),
        ("/etc/hostname", "is not a block device"),
    ],
)
def test_refuses_paths_that_are_not_disks(path: str, sentence: str) -> None:
    with pytest.raises(DriveError, match=sentence):
        drives.validate_target(path, image_size=1)


@pytest.mark.parametrize(
    ("id_path", "slot"),
    [
        ("pci-0000:00:14.0-usb-0:3:1.0-scsi-0:0:0:0", "Slot 3"),
        ("pci-0000:00:14.0-usb-0:1.4:1.0-scsi-0:0:0:0", "Slot 1.4"),
        ("pci-0000:00:1f.2-ata-1", None),
    ],
)
def test_slot_names_follow_the_usb_port(id_path: str, slot: str | None) -> None:
    assert drives.slot_from_id_path(id_path) == slot


BOARD = "pci0000:00/0000:00:14.0"  # the mainboard's USB 3 controller


def plug(sysfs: Path, controller: str, hub: int, port: str, name: str) -> None:
    """A drive as the kernel lays it out in sysfs: /sys/block/NAME → its device.

    `controller` is the controller's folder under /sys/devices.
    """
    root = sysfs / "devices" / controller / f"usb{hub}"
    usb = root / f"{hub}-{port}"
    disk = usb / f"{hub}-{port}:1.0/host4/target4:0:0/4:0:0:0/block" / name
    disk.mkdir(parents=True)
    (usb / "idVendor").write_text("04e8\n")
    (usb / "idProduct").write_text("4001\n")
    for folder in ("block", "bus/usb/devices"):
        (sysfs / folder).mkdir(parents=True, exist_ok=True)
    (sysfs / "block" / name).symlink_to(disk)
    hub_link = sysfs / "bus/usb/devices" / f"usb{hub}"
    if not hub_link.exists():
        hub_link.symlink_to(root)


def details(sysfs: Path, name: str) -> tuple[str | None, str | None]:
    return drives.usb_details(name, sysfs / "block", sysfs / "bus/usb/devices")


def test_reads_the_bridge_id_and_port_from_sysfs(tmp_path: Path) -> None:
    plug(tmp_path, BOARD, 2, "3", "sdb")  # port 3 of the USB 3 hub
    plug(tmp_path, BOARD, 1, "1.4", "sdc")  # a USB 2 hub on port 1

    assert details(tmp_path, "sdb") == ("04e8:4001", "3")
    assert details(tmp_path, "sdc") == ("04e8:4001", "1.4")
    assert details(tmp_path, "sdz") == (None, None)


def test_two_controllers_never_give_two_drives_one_slot(tmp_path: Path) -> None:
    # The card sits behind the bridge at 00:1c.0, so its sysfs path sorts
    # before the board's second controller at 00:1d.0; its address does not.
    card = "pci0000:00/0000:00:1c.0/0000:03:00.0"
    second = "pci0000:00/0000:00:1d.0"
    plug(tmp_path, card, 4, "3", "sdb")  # port 3 of the card's controller
    plug(tmp_path, BOARD, 2, "3", "sdc")  # port 3 on the board's
    plug(tmp_path, BOARD, 1, "2", "sdd")  # the board's USB 2 hub
    plug(tmp_path, second, 3, "3", "sde")  # port 3 of the board's second
    plug(tmp_path, "platform/vhci_hcd.0", 5, "1", "sdf")  # USB/IP, no socket

    assert details(tmp_path, "sdc") == ("04e8:4001", "1-3")
    assert details(tmp_path, "sdd") == ("04e8:4001", "1-2")
    assert details(tmp_path, "sde") == ("04e8:4001", "2-3")
    assert details(tmp_path, "sdb") == ("04e8:4001", "3-3")
    assert details(tmp_path, "sdf") == ("04e8:4001", "1")


def test_virtual_controllers_rename_no_slot(tmp_path: Path) -> None:
    plug(tmp_path, BOARD, 2, "3", "sdb")
    plug(tmp_path, "platform/vhci_hcd.0", 3, "1", "sdc")  # modprobe vhci-hcd
    plug(tmp_path, "platform/dummy_hcd.0", 5, "2", "sdd")  # modprobe dummy_hcd

    assert details(tmp_path, "sdb") == ("04e8:4001", "3")
    assert details(tmp_path, "sdd") == ("04e8:4001", "2")
