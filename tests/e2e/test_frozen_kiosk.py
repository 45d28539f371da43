"""The station app frozen by PyInstaller: build it, start it, use it, stop it."""

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from portal.local_s3 import free_port

REPO = Path(__file__).resolve().parents[2]


def _env(data_dir: Path, **settings: str) -> dict[str, str]:
    # NiceGUI takes PYTEST_* variables as a sign that it runs inside its own tests.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return {**inherited, "KIOSK_DATA_DIR": str(data_dir), **settings}


def _processes_of(binary: Path) -> list[int]:
    """Live processes started from the frozen binary."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "exe")) == binary:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_serves_the_screens_after_migrating_and_stops_cleanly(frozen_app, tmp_path):
    port = free_port()
    app = subprocess.Popen(
        [str(frozen_app)],
        env=_env(tmp_path, KIOSK_PORT=str(port)),
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "stderr.txt").open("wb"),
        start_new_session=True,
    )
    try:
        page = _wait_for_page(f"http://127.0.0.1:{port}/", app)
        with sqlite3.connect(tmp_path / "kiosk.sqlite3") as db:
            (applied,) = db.execute(
                "SELECT version_num FROM alembic_version"
            ).fetchone()
    finally:
        app.send_signal(signal.SIGTERM)
        app.wait(30)

    assert "<title>Flashing station</title>" in page
    assert applied == _newest_migration()
    assert _eventually(lambda: _processes_of(frozen_app) == [])


@pytest.mark.django_db(transaction=True)
def test_downloads_a_release_from_the_portal(
    frozen_app, tmp_path, live_server, station_token, make_release, s3
):
    make_release("v1.2.3", b"firmware " * 100_000)

    done = subprocess.run(
        [str(frozen_app), "download"],
        env=_env(
            tmp_path,
            KIOSK_API_BASE_URL=live_server.url,
            KIOSK_STATION_TOKEN=station_token,
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert "v1.2.3 is verified and ready" in done.stdout
    image = tmp_path / "recommended" / "FlashingApp_v1.2.3.img"
    assert image.read_bytes() == b"firmware " * 100_000


def test_a_failed_migration_exits_non_zero(frozen_app, tmp_path):
    (tmp_path / "kiosk.sqlite3").write_bytes(b"this is not a database" * 100)

    done = subprocess.run(
        [str(frozen_app), "ui", "--port", str(free_port())],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode != 0
    assert "could not be upgraded" in done.stderr


def _newest_migration() -> str:
    config = Config()
    config.set_main_option("script_location", str(REPO / "alembic"))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def _wait_for_page(url: str, app: subprocess.Popen[bytes], timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert app.poll() is None, f"the frozen app exited with {app.returncode}"
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return response.text
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError("the frozen app did not answer")


def _eventually(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
