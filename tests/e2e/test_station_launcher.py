"""The station as installed: launcher and units over the packaged app.

The launcher runs the frozen app that `make kiosk-app` builds, laid out as the
README installs it. There is no display here, so `chromium` is a stand-in on
PATH that records how it was started and waits like a browser would.
"""

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from portal.local_s3 import free_port

REPO = Path(__file__).resolve().parents[2]
STATION = REPO / "deploy" / "station"
TIMEOUT = 60.0

STAND_IN = """#!/bin/sh
echo "$@" >> "{calls}"
exec sleep 3600
"""


def eventually(check: Callable[[], object], what: str) -> object:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def session_processes(session: int) -> dict[int, str]:
    """Live processes of one session: pid → command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != session:
                continue
            line = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            status = (entry / "stat").read_text().split()[2]
        except (OSError, IndexError):
            continue
        if status != "Z":
            found[int(entry.name)] = line.decode(errors="replace").strip()
    return found


def the_one(session: int, needle: str) -> int | None:
    matches = [p for p, line in session_processes(session).items() if needle in line]
    return matches[0] if len(matches) == 1 else None


def install(frozen_app: Path, root: Path) -> Path:
    """/opt/flashstation as the README lays it out, under `root`."""
    root.mkdir()
    (root / "flash-kiosk").symlink_to(frozen_app.parent, target_is_directory=True)
    (root / "station").symlink_to(STATION, target_is_directory=True)
    return root


@pytest.fixture
def launched(
    tmp_path, frozen_app
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    installed = install(frozen_app, tmp_path / "opt-flashstation")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "chromium-calls"
    chromium = bin_dir / "chromium"
    chromium.write_text(STAND_IN.format(calls=calls))
    chromium.chmod(0o755)
    port = free_port()
    # NiceGUI takes PYTEST_* variables as a sign that it runs inside its own tests.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env = {
        **inherited,
        "PATH": f"{bin_dir}:{inherited['PATH']}",
        "KIOSK_DATA_DIR": str(tmp_path / "station"),
        "KIOSK_PORT": str(port),
        "XDG_RUNTIME_DIR": str(tmp_path),
    }
    launch = subprocess.Popen(
        [str(installed / "station" / "launch")],
        env=env,
        start_new_session=True,
        stderr=(tmp_path / "launch.log").open("wb"),
    )
    try:
        yield launch, f"http://127.0.0.1:{port}/", calls
    finally:
        if launch.poll() is None:
            os.killpg(launch.pid, signal.SIGKILL)
            launch.wait(10)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_restarts_what_exits_and_stops_everything_on_sigterm(launched):
    launch, url, calls = launched
    session = launch.pid

    log = calls.parent / "launch.log"
    eventually(lambda: answers(url), f"the app to answer; {log}")
    eventually(lambda: calls.exists(), "the kiosk browser to start")
    words = calls.read_text().split()
    assert "--kiosk" in words
    assert words[-1] == url

    app = eventually(lambda: the_one(session, "flash-kiosk ui"), "one app process")
    assert isinstance(app, int)
    os.kill(app, signal.SIGKILL)
    again = eventually(
        lambda: (pid := the_one(session, "flash-kiosk ui")) not in (None, app) and pid,
        "the app to be started again",
    )
    eventually(lambda: answers(url), "the restarted app to answer")

    browser = eventually(lambda: the_one(session, "sleep 3600"), "the browser")
    assert isinstance(browser, int)
    os.kill(browser, signal.SIGKILL)
    eventually(
        lambda: len(calls.read_text().splitlines()) == 2, "the browser to start again"
    )

    launch.send_signal(signal.SIGTERM)
    launch.wait(30)
    eventually(lambda: not session_processes(session), "every process to stop")
    assert again != app
    assert launch.returncode in (0, -signal.SIGTERM), launch.returncode
    assert "flash-kiosk exited with status 137 (SIGKILL)" in log.read_text()


def test_the_systemd_units_are_valid(tmp_path, frozen_app):
    installed = install(frozen_app, tmp_path / "opt-flashstation")
    units = []
    for unit in sorted(STATION.glob("*.service")):
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace("/opt/flashstation", str(installed)))
        units.append(str(copy))

    done = subprocess.run(
        ["systemd-analyze", "verify", *units],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert len(units) == 2
    assert done.returncode == 0, done.stderr
