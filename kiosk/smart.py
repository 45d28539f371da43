"""A drive's serial number and identity, read with `smartctl --json -i`.

Portable SSDs are NVMe or SATA drives behind a USB bridge. The bridge speaks
USB mass storage (SCSI) and must be asked, in its own vendor-specific way, to
pass an ATA or NVMe command through to the drive. smartctl cannot always tell
which way from the device alone, and probing types blindly can reset some
bridges, so the type comes from the bridge's USB vendor:product id:

    vendor:product   bridge                               -d
    04e8:4001        Samsung T7 (ASMedia ASM2362 inside)  sntasmedia
    174c:2362        ASMedia ASM2362, USB to NVMe         sntasmedia
    174c:55aa        ASMedia ASM1051/1053/1153, SATA      sat
    174c:1153        ASMedia ASM1153, SATA                sat
    174c:*           other ASMedia (our NVMe PSSDs)       sntasmedia
    0bda:9210        Realtek RTL9210, USB to NVMe         sntrealtek
    152d:0583        JMicron JMS583, USB to NVMe          sntjmicron
    04e8:61f5        Samsung T5 (SATA inside)             sat
    152d:0578        JMicron JMS578, SATA                 sat
    152d:0567        JMicron JMS567, SATA                 sat
    152d:2567        JMicron JMS567, SATA                 sat
    anything else    smartctl decides (no -d)

Source: the USB section of smartmontools' drivedb.h (7.3, as installed in
/usr/share/smartmontools), plus the T7's id. drivedb.h sends unknown ASMedia
ids to `sat`; our stations flash NVMe PSSDs, whose ASMedia bridges are
ASM236x, hence `sntasmedia` for those.

smartctl's exit status is a bit mask (smartctl(8), "RETURN VALUES"): bit 0
the command line did not parse, bit 1 the device could not be opened, bit 2
a command to the device failed, bits 3 to 7 report the disk's health and its
logs. Only bits 0 and 1 mean no identity at all; with bit 2 the identity may
be partial (often: the bridge passed no command through, so no serial).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kiosk.errors import DriveError

__all__ = [
    "DEFAULT_TIMEOUT",
    "DriveIdentity",
    "bridge_type",
    "exit_status_meaning",
    "flash_refusal",
    "read_identity",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 20.0

# TODO(#4): add the T7 Shield and T9 ids once read from real drives (lsusb).
_BRIDGES: dict[str, str] = {
    "04e8:4001": "sntasmedia",
    "174c:2362": "sntasmedia",
    "174c:55aa": "sat",
    "174c:1153": "sat",
    "0bda:9210": "sntrealtek",
    "152d:0583": "sntjmicron",
    "04e8:61f5": "sat",
    "152d:0578": "sat",
    "152d:0567": "sat",
    "152d:2567": "sat",
}
_VENDOR_BRIDGES: dict[str, str] = {"174c": "sntasmedia"}

_EXIT_BITS = (
    "the command line was not accepted",
    "the device could not be opened",
    "a command to the device failed",
    "the drive reports that it is failing",
    "the drive reports a prefailure attribute at or below its threshold",
    "an attribute was at or below its threshold in the past",
    "the drive's error log has entries",
    "the drive's self-test log has errors",
)
_HEALTH_BITS = 0b1111_1000


@dataclass(frozen=True)
class DriveIdentity:
    """What smartctl says a drive is; serial is None when it could not tell."""

    serial: str | None
    model: str
    firmware: str
    capacity_bytes: int
    smartctl_type: str | None
    exit_status: int = 0
    health_warnings: tuple[str, ...] = field(default=())

    @property
    def has_serial(self) -> bool:
        return bool(self.serial)


def bridge_type(usb_id: str | None) -> str | None:
    """The `-d` type for a USB vendor:product id, or None to let smartctl choose."""
    if not usb_id:
        return None
    usb_id = usb_id.lower()
    if usb_id in _BRIDGES:
        return _BRIDGES[usb_id]
    return _VENDOR_BRIDGES.get(usb_id.partition(":")[0])


def exit_status_meaning(status: int) -> list[str]:
    """The plain meaning of each bit set in smartctl's exit status."""
    return [text for bit, text in enumerate(_EXIT_BITS) if status & (1 << bit)]


def read_identity(
    device: str,
    usb_id: str | None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    smartctl: str = "smartctl",
) -> DriveIdentity:
    """Serial, model, firmware and capacity of `device`; raises DriveError."""
    program = shutil.which(smartctl)
    if program is None:
        log.error("smartctl (%s) not found on PATH", smartctl)
        raise DriveError(
            "smartctl is not installed, so drive serials cannot be read; "
            "install smartmontools on the station."
        )

    kind = bridge_type(usb_id)
    command = [program, "--json", "-i"]
    if kind:
        command += ["-d", kind]
    command.append(device)
    answer = _run(command, device, timeout)
    return _identity(answer, device, kind)


def flash_refusal(
    identity: DriveIdentity | None, *, allow_without_serial: bool
) -> str | None:
    """Why a drive must not be flashed for want of a serial, or None if it may."""
    if allow_without_serial or (identity is not None and identity.has_serial):
        return None
    return (
        "The drive's serial number cannot be read, so its flash could not be "
        "traced; use another drive or allow flashing without serial in Settings."
    )


def _run(command: Sequence[str], device: str, timeout: float) -> dict[str, Any]:
    log.info("reading identity of %s: %s", device, " ".join(command))
    try:
        # run() kills the child when the timeout expires.
        done = subprocess.run(
            command, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        log.error("smartctl on %s hung for %s s; killed", device, timeout)
        raise DriveError(
            f"Reading the serial of {device} took longer than {timeout:g} s; "
            "unplug the drive, plug it in again and retry."
        ) from exc
    except OSError as exc:
        log.error("cannot run %s: %s", command[0], exc)
        raise DriveError(
            f"smartctl could not be started ({exc.strerror}); "
            "reinstall smartmontools on the station."
        ) from exc

    try:
        answer = json.loads(done.stdout)
        if not isinstance(answer, dict) or not isinstance(
            answer.get("smartctl", {}), dict
        ):
            raise ValueError("not smartctl's JSON")
    except ValueError as exc:
        log.error(
            "smartctl on %s gave no JSON (exit %s): %r",
            device,
            done.returncode,
            done.stdout[:500] + done.stderr[:500],
        )
        raise DriveError(
            f"smartctl gave an answer for {device} that cannot be read; "
            "update smartmontools or try another USB port."
        ) from exc
    answer.setdefault("smartctl", {}).setdefault("exit_status", done.returncode)
    return answer


def _identity(answer: dict[str, Any], device: str, kind: str | None) -> DriveIdentity:
    status = _int(answer.get("smartctl", {}).get("exit_status"))
    messages = _messages(answer)
    if status & 0b11:
        log.error(
            "smartctl on %s: exit %s (%s) %s",
            device,
            status,
            "; ".join(exit_status_meaning(status)),
            messages,
        )
        if status & 0b10 or not os.path.exists(device):
            raise DriveError(
                f"{device} could not be opened to read its serial; "
                "check that it is still plugged in."
            )
        raise DriveError(
            f"{device} is not a drive whose serial smartctl can read; "
            "its USB bridge may be unsupported."
        )

    serial = str(answer.get("serial_number") or "").strip() or None
    identity = DriveIdentity(
        serial=serial,
        model=str(answer.get("model_name") or "").strip(),
        firmware=str(answer.get("firmware_version") or "").strip(),
        capacity_bytes=_capacity(answer),
        smartctl_type=kind,
        exit_status=status,
        health_warnings=tuple(exit_status_meaning(status & _HEALTH_BITS)),
    )
    if status:
        log.warning(
            "smartctl on %s: exit %s (%s)",
            device,
            status,
            "; ".join(exit_status_meaning(status)),
        )
    if serial is None:
        log.warning("smartctl found no serial for %s: %s", device, messages)
    return identity


def _capacity(answer: dict[str, Any]) -> int:
    for key in ("user_capacity", "nvme_total_capacity"):
        value = answer.get(key)
        if isinstance(value, dict):
            value = value.get("bytes")
        if isinstance(value, int) and value > 0:
            return value
    return 0


def _messages(answer: dict[str, Any]) -> str:
    items = answer.get("smartctl", {}).get("messages") or []
    return "; ".join(
        str(item.get("string", "")) for item in items if isinstance(item, dict)
    )


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0
