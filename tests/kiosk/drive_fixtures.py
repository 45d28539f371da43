"""Real targets for drive tests: image files, loop devices, a tiny tmpfs.

Loop devices and mounts need root; without it the helpers skip the test with
the reason. Every helper is a context manager that detaches, unmounts or
deletes what it made, also when the test fails.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

TIMEOUT = 30
SMARTCTL_RECORDINGS = Path(__file__).parent / "smartctl"


def make_image(folder: Path, size: int, seed: int = 1) -> tuple[Path, str]:
    """A random image of `size` bytes; returns its path and SHA-256."""
    data = random.Random(seed).randbytes(size)
    path = folder / f"image-{seed}.img"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def sha256_of(path: Path | str, size: int) -> str:
    """SHA-256 of the first `size` bytes of a file or device."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        left = size
        while left:
            block = stream.read(min(left, 1 << 20))
            if not block:
                break
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("loop devices and mounts need root")


@contextmanager
def loop_device(backing: Path, *, read_only: bool = False) -> Iterator[str]:
    """A loop device over `backing`, detached afterwards."""
    _need_root()
    command = ["losetup", "-f", "--show"]
    if read_only:
        command.append("-r")
    try:
        done = subprocess.run(
            [*command, str(backing)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"losetup cannot attach a loop device here: {exc}")
    device = done.stdout.strip()
    try:
        yield device
    finally:
        subprocess.run(["losetup", "-d", device], timeout=TIMEOUT, check=False)


@contextmanager
def loop_target(folder: Path, size: int, name: str = "disk") -> Iterator[str]:
    """A loop device over a new sparse file of `size` bytes."""
    backing = folder / f"{name}.backing"
    with open(backing, "wb") as stream:
        stream.truncate(size)
    try:
        with loop_device(backing) as device:
            yield device
    finally:
        backing.unlink(missing_ok=True)


@contextmanager
def tiny_tmpfs(folder: Path, size: int) -> Iterator[Path]:
    """A tmpfs of `size` bytes mounted on `folder`, unmounted afterwards."""
    _need_root()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
            capture_output=True,
            timeout=TIMEOUT,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], timeout=TIMEOUT, check=False)


@contextmanager
def mounted_loop(folder: Path, size: int) -> Iterator[str]:
    """A loop device holding an ext4 file system mounted under `folder`."""
    with loop_target(folder, size, "mounted") as device:
        subprocess.run(
            ["mkfs.ext4", "-q", "-F", device],
            capture_output=True,
            timeout=TIMEOUT,
            check=True,
        )
        point = folder / "mnt"
        point.mkdir()
        subprocess.run(["mount", device, str(point)], timeout=TIMEOUT, check=True)
        try:
            yield device
        finally:
            subprocess.run(["umount", str(point)], timeout=TIMEOUT, check=False)


def install_smartctl_stand_in(
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    output: str,
    exit_status: int = 0,
    sleep: float = 0.0,
) -> Path:
    """Put a stand-in `smartctl` first on PATH; returns the file its argv goes to.

    It stands in for USB drives this machine does not have: it prints a
    recorded answer and exits as smartctl would have for that drive.
    """
    folder.mkdir(parents=True, exist_ok=True)
    answer = folder / "answer.json"
    answer.write_text(output, encoding="utf-8")
    argv_file = folder / "argv.txt"
    script = folder / "smartctl"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys, time\n"
        f"open({str(argv_file)!r}, 'w').write(' '.join(sys.argv[1:]))\n"
        f"time.sleep({sleep!r})\n"
        f"sys.stdout.write(open({str(answer)!r}).read())\n"
        f"sys.exit({exit_status})\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return argv_file


def recording(name: str) -> str:
    """A recorded `smartctl --json -i` answer from tests/kiosk/smartctl/."""
    return (SMARTCTL_RECORDINGS / name).read_text(encoding="utf-8")
