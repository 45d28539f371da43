"""Target drives: which disks may be flashed, their slots, and hot-plug.

Disks come from `lsblk --json`, which gives the whole disks with their
partitions and mount points in one call. USB details come from sysfs: the
bridge's vendor:product id sits in the `idVendor`/`idProduct` files of the
nearest USB device above the disk, and the port the drive is plugged into is
in the name of that USB device (`2-3` is port 3 of bus 2, `2-1.4` is port 4
of a hub on port 1). udev, where it runs, says the same in ID_PATH
(`pci-0000:00:14.0-usb-0:3:1.0-scsi-0:0:0:0`).

Slot names: a drive on port path P is "Slot P" ("Slot 3", "Slot 1.4"). The
name depends only on the physical port, so the same socket has the same name
after a reboot or a re-plug, and the label on the station can say so. Port
numbers repeat on each USB host controller, so on a station with several
controllers on PCI the controller's place in PCI address order comes first
("Slot 2-3" is port 3 of the second controller); fitting or removing a USB
card renumbers the controllers after it. Virtual controllers (vhci_hcd for
USB/IP, dummy_hcd) have no sockets: they are not counted, and a drive on one
is "Slot P". Loop devices are "Loop N (backing file)"; other disks keep their
kernel name.

A disk is never offered when it holds `/`, `/boot` or the station's data
directory (followed through partitions and device-mapper layers to the
disks underneath), when any of its partitions is mounted or used as swap,
when it is read-only, or when it is smaller than the image. Each refused disk
carries the reason as a sentence.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import select
import stat
import subprocess
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.errors import DriveError
from kiosk.library import human_size

__all__ = [
    "Drive",
    "DriveRefused",
    "DriveWatcher",
    "candidates",
    "list_drives",
    "protected_disks",
    "slot_from_id_path",
    "usb_details",
    "validate_target",
]

log = logging.getLogger(__name__)

LSBLK_TIMEOUT = 10.0
LSBLK_COLUMNS = (
    "NAME,PATH,TYPE,SIZE,MODEL,VENDOR,SERIAL,TRAN,RM,HOTPLUG,RO,MOUNTPOINTS,"
    "PKNAME,MAJ:MIN"
)
SYS_BLOCK = Path("/sys/block")
SYS_DEV_BLOCK = Path("/sys/dev/block")
SYS_USB_DEVICES = Path("/sys/bus/usb/devices")
UDEV_CONTROL = Path("/run/udev/control")
SYSTEM_PATHS = ("/", "/boot")
_USB_DEVICE = re.compile(r"^\d+-(?P<port>\d+(?:\.\d+)*)$")
_ROOT_HUB = re.compile(r"^usb\d+$")
_PCI_ADDRESS = re.compile(
    r"^(?P<domain>[0-9a-f]{4,8}):(?P<bus>[0-9a-f]{2}):"
    r"(?P<device>[0-9a-f]{2})\.(?P<function>[0-7])$"
)
_DELETED = " (deleted)"  # the kernel's mark on a backing file that was removed
_ID_PATH_USB = re.compile(r"-usb-\d+:(?P<port>\d+(?:\.\d+)*):")


@dataclass(frozen=True)
class Drive:
    """A whole disk; `reason` says why it is not offered, empty when it is."""

    path: str
    name: str
    size: int
    model: str
    vendor: str
    serial: str
    usb_id: str | None
    slot: str
    transport: str
    removable: bool
    is_loop: bool = False
    reason: str = ""

    @property
    def offered(self) -> bool:
        return not self.reason

    @property
    def label(self) -> str:
        """What a person sees: slot, model and size."""
        model = " ".join(part for part in (self.vendor, self.model) if part)
        return f"{self.slot}: {model or self.name}, {human_size(self.size)}"


def list_drives(
    *,
    image_size: int,
    data_dir: Path | None = None,
    allow_loop: bool = False,
    timeout: float = LSBLK_TIMEOUT,
) -> list[Drive]:
    """Every whole disk, each offered or with the reason it is not."""
    protected, unknown = _protection(_protected_paths(data_dir))
    drives = [
        _drive(disk, image_size, protected, allow_loop)
        for disk in _lsblk(timeout)
        if disk.get("type") in ("disk", "loop")
    ]
    if not unknown:
        return drives
    # Fail safe: any real disk might be the one holding an unknown path.
    reason = (
        f"The disk holding {', '.join(unknown)} cannot be identified, so no "
        "drive is offered; tell the maintainer."
    )
    return [
        d if d.reason or d.is_loop else dataclasses.replace(d, reason=reason)
        for d in drives
    ]


def candidates(
    *, image_size: int, data_dir: Path | None = None, allow_loop: bool = False
) -> list[Drive]:
    """The disks that may be flashed with an image of `image_size` bytes."""
    drives = list_drives(
        image_size=image_size, data_dir=data_dir, allow_loop=allow_loop
    )
    return [drive for drive in drives if drive.offered]


class DriveRefused(DriveError):
    """A drive that is there but may not be flashed; `drive` says which."""

    def __init__(self, message: str, drive: Drive) -> None:
        super().__init__(message)
        self.drive = drive


def validate_target(
    path: str,
    *,
    image_size: int,
    data_dir: Path | None = None,
    allow_loop: bool = False,
) -> Drive:
    """The drive at a path given on the command line; DriveError if refused."""
    try:
        mode = os.stat(path)
    except OSError as exc:
        raise DriveError(
            f"{path} does not exist ({exc.strerror}); check the device name, "
            "e.g. /dev/sdb."
        ) from exc
    if not stat.S_ISBLK(mode.st_mode):
        raise DriveError(
            f"{path} is not a block device; give a whole disk such as /dev/sdb."
        )

    node = _sys_node(mode.st_rdev)
    if node is not None and (node / "partition").exists():
        disk = node.parent.name
        raise DriveError(
            f"{path} is a partition; give the whole disk, /dev/{disk}, instead."
        )
    name = node.name if node is not None else Path(os.path.realpath(path)).name
    drives = list_drives(
        image_size=image_size, data_dir=data_dir, allow_loop=allow_loop
    )
    for drive in drives:
        if drive.name == name:
            if drive.reason:
                raise DriveRefused(f"{path} cannot be flashed. {drive.reason}", drive)
            return drive
    raise DriveError(
        f"{path} is not a disk with a medium that can be flashed; choose a USB drive."
    )


def protected_disks(paths: Iterable[Path]) -> dict[str, str]:
    """Kernel names of the disks under `paths`, each with the path it holds."""
    return _protection(paths)[0]


def _protection(paths: Iterable[Path]) -> tuple[dict[str, str], list[str]]:
    """The protected disks, and the paths whose disk could not be found."""
    found: dict[str, str] = {}
    unknown: list[str] = []
    for path in paths:
        try:
            node = _sys_node(_device_of(path))
        except OSError as exc:
            log.warning("cannot tell which disk holds %s: %s", path, exc)
            node = None
        if node is None:
            log.warning("no block device found for %s", path)
            unknown.append(str(path))
            continue
        for disk in _disks_under(node):
            found.setdefault(disk, str(path))
    return found, unknown


def slot_from_id_path(id_path: str) -> str | None:
    """`…-usb-0:3:1.0-…` → "Slot 3"; None when the path has no USB port."""
    match = _ID_PATH_USB.search(id_path)
    return f"Slot {match['port']}" if match else None


def _protected_paths(data_dir: Path | None) -> list[Path]:
    paths = [Path(p) for p in SYSTEM_PATHS if os.path.exists(p)]
    if data_dir is not None:
        paths.append(data_dir)
    return paths


def _lsblk(timeout: float) -> list[dict[str, Any]]:
    command = ["lsblk", "--json", "--bytes", "-o", LSBLK_COLUMNS]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=True
        )
        answer = json.loads(done.stdout)
        disks = answer["blockdevices"]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
        log.error("lsblk failed: %s", exc)
        raise DriveError(
            "The list of drives cannot be read (lsblk failed); "
            "restart the station and tell the maintainer if it persists."
        ) from exc
    return [disk for disk in disks if isinstance(disk, dict)]


def _drive(
    disk: dict[str, Any], image_size: int, protected: dict[str, str], allow_loop: bool
) -> Drive:
    name = str(disk.get("name") or "")
    is_loop = disk.get("type") == "loop"
    usb_id, port = usb_details(name)
    transport = str(disk.get("tran") or "")
    removable = bool(disk.get("rm")) or bool(disk.get("hotplug"))
    size = int(disk.get("size") or 0)
    drive = Drive(
        path=str(disk.get("path") or f"/dev/{name}"),
        name=name,
        size=size,
        model=_text(disk.get("model")),
        vendor=_text(disk.get("vendor")),
        serial=_text(disk.get("serial")),
        usb_id=usb_id,
        slot=_slot(name, is_loop, port),
        transport=transport,
        removable=removable,
        is_loop=is_loop,
    )
    reason = _refusal(drive, disk, image_size, protected.get(name), is_loop, allow_loop)
    if reason:
        log.debug("not offering %s: %s", drive.path, reason)
        return dataclasses.replace(drive, reason=reason)
    return drive


def _refusal(
    drive: Drive,
    disk: dict[str, Any],
    image_size: int,
    holds: str | None,
    is_loop: bool,
    allow_loop: bool,
) -> str:
    """Why `drive` must not be flashed, or "" if it may."""
    if holds is not None:
        return (
            f"It is a system disk of this station (it holds {holds}); "
            "it is never offered."
        )
    mounted = _mount_points(disk)
    if mounted:
        return (
            f"It is in use, mounted at {', '.join(mounted)}; it is not offered "
            "so that nothing in use is overwritten. Unmount it first."
        )
    if is_loop and not allow_loop:
        return "It is a loop device; those are offered only in test set-ups."
    if not is_loop and drive.transport != "usb" and not drive.removable:
        return "It is not a USB or removable drive."
    if disk.get("ro"):
        return "It is write-protected; check the drive's lock switch."
    if drive.size == 0:
        return "It has no medium (size 0)."
    if drive.size < image_size:
        return (
            f"It holds {human_size(drive.size)}, but the image needs "
            f"{human_size(image_size)}; use a larger drive."
        )
    return ""


def _mount_points(disk: dict[str, Any]) -> list[str]:
    points = [str(p) for p in disk.get("mountpoints") or [] if p]
    for child in disk.get("children") or []:
        if isinstance(child, dict):
            points += _mount_points(child)
    return points


def _slot(name: str, is_loop: bool, port: str | None) -> str:
    if is_loop:
        # The backing file names what the loop device stands for (a demo
        # drive, a test target), so nobody takes it for a USB drive.
        backing_file = _read_name(SYS_BLOCK / name / "loop" / "backing_file")
        backing = Path(backing_file.removesuffix(_DELETED)).name
        label = f"Loop {name.removeprefix('loop')}"
        return f"{label} ({backing})" if backing else label
    if port is not None:
        return f"Slot {port}"
    return name


def usb_details(
    name: str, sys_block: Path = SYS_BLOCK, sys_usb: Path = SYS_USB_DEVICES
) -> tuple[str | None, str | None]:
    """The USB vendor:product id and port path above a disk, from sysfs.

    A port number is unique on one host controller only. On a station with
    several PCI controllers the port gets the controller's place among them
    in front ("2-3": port 3 of the second controller, by PCI address), so that
    two drives never share a slot name. A drive on a virtual controller keeps
    the plain port.
    """
    try:
        node = (sys_block / name).resolve(strict=True)
    except OSError:
        return None, None
    for folder in (node, *node.parents):
        vendor, product = folder / "idVendor", folder / "idProduct"
        if vendor.exists() and product.exists():
            usb_id = f"{_read(vendor)}:{_read(product)}".lower()
            match = _USB_DEVICE.match(folder.name)
            if match is None:
                return usb_id, None
            controllers = _usb_controllers(sys_usb)
            controller = _controller_of(folder)
            if len(controllers) > 1 and controller in controllers:
                return usb_id, f"{controllers.index(controller) + 1}-{match['port']}"
            return usb_id, match["port"]
    return None, None


def _usb_controllers(sys_usb: Path) -> list[Path]:
    """The station's USB host controllers on PCI, in PCI address order.

    A USB 3 controller shows two root hubs (usb1 for USB 2 devices, usb2 for
    USB 3 ones) over one physical set of ports; both count as one controller.
    The order is by the controller's own address, not its sysfs path, which
    also names the bridges in front of it. Virtual controllers (vhci_hcd,
    dummy_hcd, under /sys/devices/platform) are left out, so loading their
    module renames no slot.
    """
    try:
        hubs = [entry for entry in sys_usb.iterdir() if _ROOT_HUB.match(entry.name)]
    except OSError:
        return []
    found: dict[Path, tuple[int, ...]] = {}
    for hub in hubs:
        try:
            controller = hub.resolve(strict=True).parent
        except OSError:
            continue
        address = _PCI_ADDRESS.match(controller.name)
        if address is not None:
            found[controller] = tuple(int(part, 16) for part in address.groups())
    return sorted(found, key=found.__getitem__)


def _controller_of(device: Path) -> Path | None:
    for folder in device.parents:
        if _ROOT_HUB.match(folder.name):
            return folder.parent
    return None


def _device_of(path: Path) -> int:
    """The device number of the block device holding `path`."""
    device = os.stat(path).st_dev
    if os.major(device) != 0:
        return device
    # btrfs, overlay and the like report an anonymous device; ask the mounts.
    source = _mount_source(path)
    if source is None:
        return device
    return os.stat(source).st_rdev


def _mount_source(path: Path) -> str | None:
    best, source = "", None
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as mounts:
        for line in mounts:
            fields = line.split()
            point = fields[4]
            device = fields[fields.index("-") + 2]
            inside = target == point or target.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best) and device.startswith("/dev/"):
                best, source = point, device
    return source


def _sys_node(device: int) -> Path | None:
    node = SYS_DEV_BLOCK / f"{os.major(device)}:{os.minor(device)}"
    try:
        return node.resolve(strict=True)
    except OSError:
        return None


def _disks_under(node: Path) -> set[str]:
    """The whole disks a block device lives on (partitions, dm, md followed)."""
    if (node / "partition").exists():
        return {node.parent.name}
    slaves = node / "slaves"
    below = sorted(slaves.iterdir()) if slaves.is_dir() else []
    if not below:
        return {node.name}
    disks: set[str] = set()
    for item in below:
        disks |= _disks_under(item.resolve())
    return disks


def _read(path: Path) -> str:
    """A sysfs number or id; "" when missing or not ASCII."""
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _read_name(path: Path) -> str:
    """A sysfs file name, only shown: a byte that is not UTF-8 shows as �."""
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace").strip()


def _text(value: object) -> str:
    return str(value).strip() if value else ""


class DriveWatcher:
    """Calls back when a disk appears or goes: on kernel events, else polling.

    Events come from udev when its daemon runs, else straight from the
    kernel's uevent socket (devtmpfs makes the device node either way). An
    event only wakes the watcher; every path ends in the same rescan of
    /sys/block, where a disk counts as present when its size is not zero (an
    empty card reader or a detached loop device has size 0). A rescan also
    runs every `poll_interval`, and once more shortly after an event, in
    case a drive's size was set after its event. When the event socket fails
    (it overflows with ENOBUFS under a storm of events), the watcher logs it
    and polls from then on. Callbacks run on the watcher's thread.
    """

    SETTLE = 0.5  # seconds after an event before the second look

    def __init__(
        self,
        on_add: Callable[[str], None],
        on_remove: Callable[[str], None],
        *,
        poll_interval: float = 2.0,
        use_udev: bool = True,
        sys_block: Path = SYS_BLOCK,
    ) -> None:
        self.on_add = on_add
        self.on_remove = on_remove
        self.poll_interval = poll_interval
        self.use_udev = use_udev
        self.sys_block = sys_block
        self.present: set[str] = set()
        self.mode = "polling"
        self._stop = threading.Event()
        self._stopping = threading.Lock()
        self._thread: threading.Thread | None = None
        self._event_monitor: Any = None
        self._blind = False  # the last look at sys_block failed
        # The wake-up pipe belongs to stop(), which closes it only once the
        # thread has ended: a descriptor number closed any earlier can be
        # reused by another file (the database) and get the wake byte.
        self._wake_read = self._wake_write = -1

    def start(self) -> None:
        """Take the current disks as known and watch for changes."""
        if self._wake_write >= 0:
            raise RuntimeError("the drive watcher is already running")
        self._stop.clear()
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        try:
            self.present = self._look() or set()
            self._event_monitor = self._monitor() if self.use_udev else None
            log.info("watching drives by %s", self.mode)
            thread = threading.Thread(
                target=self._run, name="drive watcher", daemon=True
            )
            self._wake_read, self._wake_write = wake_read, wake_write
            thread.start()
        except BaseException:
            self._wake_read = self._wake_write = -1
            self._close_monitor()
            os.close(wake_read)
            os.close(wake_write)
            raise
        self._thread = thread

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop watching; waits up to `timeout` for the thread to end.

        A thread still running after `timeout` keeps its wake-up pipe until a
        later stop() sees it end. Stopping a stopped watcher does nothing.
        """
        with self._stopping:
            self._stop.set()
            if self._wake_write < 0:
                return
            # A full pipe already holds a wake byte, so a failed write is fine.
            with contextlib.suppress(OSError):
                os.write(self._wake_write, b"x")
            if self._thread is not None:
                self._thread.join(timeout)
                if self._thread.is_alive():
                    log.warning("the drive watcher is still running after %ss", timeout)
                    return
            os.close(self._wake_read)
            os.close(self._wake_write)
            self._wake_read = self._wake_write = -1

    def _run(self) -> None:
        try:
            wait = self.poll_interval
            while not self._stop.is_set():
                if self._event_monitor is None:
                    self._stop.wait(self.poll_interval)
                else:
                    woke = self._wait_for_events(wait)
                    wait = self.SETTLE if woke else self.poll_interval
                if not self._stop.is_set():
                    self._rescan()
        finally:
            self._close_monitor()

    def _wait_for_events(self, timeout: float) -> bool:
        """Wait for events or stop; True when any arrived. Polls on failure."""
        try:
            return self._events(self._event_monitor, timeout)
        except Exception:
            log.exception(
                "drive events stopped arriving; polling every %ss from now on",
                self.poll_interval,
            )
            self._close_monitor()
            self.mode = "polling"
            return False

    def _events(self, monitor: Any, timeout: float) -> bool:
        """Wait for block events (or stop); True when any arrived."""
        ready, _, _ = select.select(
            [monitor.fileno(), self._wake_read], [], [], timeout
        )
        if monitor.fileno() not in ready:
            return False
        while (device := monitor.poll(timeout=0)) is not None:
            log.debug("%s event for /dev/%s", device.action, device.sys_name)
        return True

    def _rescan(self) -> None:
        now = self._look()
        if now is None:
            return
        for name in sorted(now - self.present):
            self._call(self.on_add, name)
        for name in sorted(self.present - now):
            self._call(self.on_remove, name)
        self.present = now

    def _call(self, callback: Callable[[str], None], name: str) -> None:
        try:
            callback(f"/dev/{name}")
        except Exception:
            log.exception("drive callback for /dev/%s failed", name)

    def _look(self) -> set[str] | None:
        """The disks present now; None when they cannot be listed."""
        try:
            present = self._scan()
        except Exception:
            if not self._blind:  # once, not at every poll
                log.exception("cannot list the drives in %s", self.sys_block)
            self._blind = True
            return None
        if self._blind:
            log.info("the drives in %s can be listed again", self.sys_block)
            self._blind = False
        return present

    def _scan(self) -> set[str]:
        return {
            name
            for name in os.listdir(self.sys_block)
            if _read(self.sys_block / name / "size") not in ("", "0")
        }

    def _monitor(self) -> Any:
        # Without the udev daemon, udev's socket stays silent; the kernel's
        # own events still arrive.
        source = "udev" if UDEV_CONTROL.exists() else "kernel"
        try:
            import pyudev

            monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source=source)
            monitor.filter_by(subsystem="block", device_type="disk")
            monitor.start()
        except Exception as exc:
            log.warning("no %s events, polling instead: %s", source, exc)
            return None
        self.mode = f"{source} events"
        return monitor

    def _close_monitor(self) -> None:
        # pyudev's Monitor has no close(): its socket closes when the object
        # is freed, so dropping the last reference is what closes it.
        monitor, self._event_monitor = self._event_monitor, None
        close = getattr(monitor, "close", None)
        if callable(close):
            try:
                close()
            except Exception:
                log.exception("cannot close the drive event monitor")
