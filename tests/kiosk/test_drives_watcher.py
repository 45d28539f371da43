"""The drive watcher reports disks that appear and go, by events or polling."""

from __future__ import annotations

import threading
from pathlib import Path

from kiosk.drives import DriveWatcher
from tests.kiosk.drive_fixtures import loop_target

MiB = 1024 * 1024


class Seen:
    """Collects callback paths and lets the test wait for one."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.changed = threading.Condition()

    def __call__(self, path: str) -> None:
        with self.changed:
            self.paths.append(path)
            self.changed.notify_all()

    def wait_for(self, path: str) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: path in self.paths, timeout=10)


def test_reports_an_attached_and_a_detached_loop_device(tmp_path: Path) -> None:
    added, removed = Seen(), Seen()
    watcher = DriveWatcher(added, removed, poll_interval=0.05, use_udev=False)
    watcher.start()
    try:
        with loop_target(tmp_path, 4 * MiB) as device:
            assert added.wait_for(device)
        assert removed.wait_for(device)
    finally:
        watcher.stop()

    assert watcher.mode == "polling"
    assert added.paths.count(device) == 1


def test_kernel_events_report_a_loop_device_long_before_the_next_poll(
    tmp_path: Path,
) -> None:
    # With no udev daemon (as on the CI machine) the events are the kernel's.
    added, removed = Seen(), Seen()
    watcher = DriveWatcher(added, removed, poll_interval=60)
    watcher.start()
    try:
        assert watcher.mode in ("udev events", "kernel events")
        with loop_target(tmp_path, 4 * MiB) as device:
            assert added.wait_for(device)
        assert removed.wait_for(device)
    finally:
        watcher.stop(timeout=5)

    assert not watcher.running
    assert added.paths.count(device) == 1


def test_stops_promptly(tmp_path: Path) -> None:
    watcher = DriveWatcher(print, print, poll_interval=30, use_udev=False)
    watcher.start()
    assert watcher.running

    watcher.stop(timeout=5)

    assert not watcher.running


def test_stops_promptly_while_waiting_for_events(tmp_path: Path) -> None:
    watcher = DriveWatcher(print, print, poll_interval=60)
    watcher.start()

    watcher.stop(timeout=5)

    assert not watcher.running
