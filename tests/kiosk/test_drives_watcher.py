"""The drive watcher reports disks that appear and go, by events or polling."""

from __future__ import annotations

import errno
import logging
import os
import threading
from pathlib import Path

import pytest

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


def plug(sys_block: Path, name: str, size: str = "32768") -> None:
    """A disk as /sys/block shows it: a folder whose `size` is not zero."""
    (sys_block / name).mkdir(exist_ok=True)
    (sys_block / name / "size").write_text(f"{size}\n")


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_second_stop_writes_nothing_into_a_file_that_took_the_pipes_numbers(
    tmp_path: Path,
) -> None:
    watcher = DriveWatcher(print, print, poll_interval=30, use_udev=False)
    watcher.start()
    pipe = (watcher._wake_read, watcher._wake_write)
    watcher.stop()
    database = tmp_path / "kiosk.sqlite3"
    opened: list[int] = []
    try:
        # The kernel hands out the lowest free number, so the database soon
        # holds both of the pipe's old numbers.
        while not set(pipe) <= set(opened):
            opened.append(os.open(database, os.O_WRONLY | os.O_CREAT))

        watcher.stop()
    finally:
        for number in opened:
            os.close(number)

    assert database.read_bytes() == b""


def test_a_start_that_fails_leaves_no_descriptor_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watcher = DriveWatcher(print, print, sys_block=tmp_path)

    def broken_monitor() -> None:
        raise RuntimeError("no netlink socket")

    monkeypatch.setattr(watcher, "_monitor", broken_monitor)
    before = open_descriptors()

    with pytest.raises(RuntimeError):
        watcher.start()

    assert open_descriptors() == before
    assert not watcher.running
    watcher.stop()


class BrokenMonitor:
    """Stands in for pyudev's monitor when its netlink socket fails.

    The real failure, ENOBUFS once a storm of events overflows the socket's
    buffer, cannot be produced on demand, so this double raises it: from
    fileno() as select is set up, or from poll() once select saw data.
    """

    def __init__(self, failing: str) -> None:
        self.failing = failing
        self.closed = 0
        self.ready, self._write = os.pipe()
        os.write(self._write, b"x")  # always readable: events are waiting

    def fileno(self) -> int:
        if self.failing == "fileno":
            raise OSError(errno.ENOBUFS, os.strerror(errno.ENOBUFS))
        return self.ready

    def poll(self, timeout: float) -> None:
        raise OSError(errno.ENOBUFS, os.strerror(errno.ENOBUFS))

    def close(self) -> None:
        self.closed += 1

    def release(self) -> None:
        os.close(self.ready)
        os.close(self._write)


@pytest.mark.parametrize("failing", ["fileno", "poll"])
def test_a_failing_event_socket_is_logged_once_and_polling_takes_over(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    failing: str,
) -> None:
    added, removed = Seen(), Seen()
    watcher = DriveWatcher(added, removed, poll_interval=0.01, sys_block=tmp_path)
    monitor = BrokenMonitor(failing)

    def events() -> BrokenMonitor:
        watcher.mode = "kernel events"
        return monitor

    monkeypatch.setattr(watcher, "_monitor", events)
    watcher.start()
    try:
        plug(tmp_path, "sdx")
        assert added.wait_for("/dev/sdx")
        plug(tmp_path, "sdx", size="0")
        assert removed.wait_for("/dev/sdx")
        assert watcher.running
    finally:
        watcher.stop()
        monitor.release()

    assert watcher.mode == "polling"
    assert monitor.closed == 1
    (error,) = errors_logged(caplog)
    assert "polling" in error


def test_a_failing_rescan_does_not_end_the_watcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    added, removed = Seen(), Seen()
    watcher = DriveWatcher(
        added, removed, poll_interval=0.01, use_udev=False, sys_block=tmp_path
    )
    watcher.start()
    failures = 3
    scan = watcher._scan

    def unreadable_sys() -> set[str]:
        nonlocal failures
        if failures:
            failures -= 1
            raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path))
        return scan()

    monkeypatch.setattr(watcher, "_scan", unreadable_sys)
    try:
        plug(tmp_path, "sdx")
        assert added.wait_for("/dev/sdx")
    finally:
        watcher.stop()

    (error,) = errors_logged(caplog)
    assert f"cannot list the drives in {tmp_path}" in error


def test_the_event_socket_is_closed_once_stopped() -> None:
    watcher = DriveWatcher(print, print, poll_interval=60)
    watcher.start()
    if watcher.mode == "polling":
        watcher.stop()
        pytest.skip("no kernel or udev events here")
    socket = watcher._event_monitor.fileno()
    inode = os.readlink(f"/proc/self/fd/{socket}")

    watcher.stop()

    assert not os.path.exists(f"/proc/self/fd/{socket}") or (
        os.readlink(f"/proc/self/fd/{socket}") != inode
    )
