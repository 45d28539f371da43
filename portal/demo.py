"""`make demo`: the whole system on loopback, from one command.

Starts a private SeaweedFS, a fresh portal database under var/demo/ with an
admin, a release manager, a QA user and a demo station, publishes two
generated images (v1.2.2 and v1.2.3) and serves the portal with gunicorn.
Then a station (the kiosk) fetches v1.2.2 through the portal, so its banner
offers v1.2.3, and serves its touch screens. As root, two demo drives backed
by files in var/demo/drives/ are attached as loop devices (they show as
"Loop N (demo-drive-1.img)", not as USB drives, and have no serial). Ctrl-C
stops everything.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from portal.local_s3 import HOST, LocalS3

REPO = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO / "var" / "demo"
IMAGE_SIZE = 32 * 2**20
RELEASES = [
    ("v1.2.2", "Demo image: previous release."),
    ("v1.2.3", "Demo image: current release."),
]


def main() -> int:
    port = int(os.environ.get("PORTAL_DEMO_PORT", "8000"))
    station_port = int(os.environ.get("KIOSK_DEMO_PORT", "8080"))
    for wanted, variable in (
        (port, "PORTAL_DEMO_PORT"),
        (station_port, "KIOSK_DEMO_PORT"),
    ):
        if not _port_free(wanted):
            print(f"Port {wanted} on {HOST} is in use; set {variable} to another port.")
            return 1
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)

    with LocalS3(DEMO_DIR / "s3") as s3:
        os.environ.update(s3.env())
        os.environ["DATABASE_URL"] = f"sqlite:///{DEMO_DIR / 'portal.sqlite3'}"
        os.environ.setdefault("PORTAL_DEBUG", "1")
        os.environ.setdefault("PORTAL_SECRET_KEY", secrets.token_urlsafe(40))
        accounts = _prepare()
        running: list[subprocess.Popen[bytes]] = []
        drives: list[str] = []
        try:
            running.append(_serve(port))
            _wait_for(f"http://{HOST}:{port}/admin/login/", running[0])
            drives = _demo_drives()
            running.append(_station(port, station_port, accounts["station token"]))
            _print_addresses(port, station_port, s3, accounts, drives)
            return _wait(running)
        finally:
            # A second Ctrl-C must not cut the clean-up short.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            print("Stopping the portal, the station and the demo drives …", flush=True)
            _stop(running)
            _detach(drives)


def _prepare() -> dict[str, str]:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    from portal.flashes.apps import QA
    from portal.releases import storage
    from portal.releases.apps import RELEASE_MANAGERS
    from portal.stations.models import Station

    call_command("migrate", verbosity=0)
    storage.ensure_bucket()
    admin_password = secrets.token_urlsafe(12)
    manager_password = secrets.token_urlsafe(12)
    User.objects.create_superuser("admin", password=admin_password)
    manager = User.objects.create_user(
        "release-manager", password=manager_password, is_staff=True
    )
    manager.groups.add(Group.objects.get(name=RELEASE_MANAGERS))
    qa_password = secrets.token_urlsafe(12)
    qa = User.objects.create_user("qa", password=qa_password, is_staff=True)
    qa.groups.add(Group.objects.get(name=QA))
    station = Station(name="Demo station 1", location="Demo line")
    token = station.issue_token()
    station.save()
    (DEMO_DIR / "station-token").write_text(token + "\n")

    for version, description in RELEASES:
        image = DEMO_DIR / f"FlashingApp_{version}.img"
        _write_demo_image(image, version)
        call_command(
            "publish_release",
            str(image),
            "--version",
            version,
            "--description",
            description,
            "--publish",
        )
    return {
        "admin": admin_password,
        "release-manager": manager_password,
        "qa": qa_password,
        "station token": token,
    }


def _write_demo_image(path: Path, seed: str) -> None:
    block = hashlib.sha256(seed.encode()).digest() * (2**20 // 32)
    with path.open("wb") as image:
        for _ in range(IMAGE_SIZE // len(block)):
            image.write(block)


def _print_addresses(
    port: int,
    station_port: int,
    s3: LocalS3,
    accounts: dict[str, str],
    drives: list[str],
) -> None:
    base = f"http://{HOST}:{port}"
    token_file = DEMO_DIR / "station-token"
    drive_lines = (
        "\n".join(
            f"  {device}  demo drive backed by {DEMO_DIR / 'drives'} (not a USB drive)"
            for device in drives
        )
        or "  none: demo drives need root (loop devices)"
    )
    print(
        f"""
Portal          {base}/admin/
  admin             user admin, password {accounts["admin"]}
  release manager   user release-manager, password {accounts["release-manager"]}
  QA                user qa, password {accounts["qa"]}
API docs        {base}/api/docs
Station token   {accounts["station token"]}  (also in {token_file})
Station         http://{HOST}:{station_port}/  (holds v1.2.2; the banner offers v1.2.3)
Demo drives
{drive_lines}
S3 (SeaweedFS)  {s3.endpoint_url}  bucket firmware
Press Ctrl-C to stop everything.
""",
        flush=True,
    )


def _serve(port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "gunicorn", "portal.wsgi", "--bind", f"{HOST}:{port}",
        "--workers", "2", "--timeout", "3600", "--no-control-socket",
    ]  # fmt: skip
    return subprocess.Popen(command, env=os.environ.copy(), start_new_session=True)


def _station(portal_port: int, port: int, token: str) -> subprocess.Popen[bytes]:
    """A kiosk holding v1.2.2, fetched from the portal like any station would."""
    data = DEMO_DIR / "station"
    data.mkdir()
    settings = {
        "api_base_url": f"http://{HOST}:{portal_port}",
        "station_token": token,
        "station_name": "Demo station 1",
        "allow_loop_targets": True,  # the demo drives are loop devices
        "allow_flash_without_serial": True,  # which smartctl cannot identify
    }
    (data / "settings.json").write_text(json.dumps(settings, indent=2))
    env = {**os.environ, "KIOSK_DATA_DIR": str(data)}
    kiosk = [sys.executable, "-m", "kiosk"]
    subprocess.run(
        [*kiosk, "-q", "download", "v1.2.2"], env=env, check=True, timeout=600
    )
    return subprocess.Popen(
        [*kiosk, "ui", "--port", str(port)], env=env, start_new_session=True
    )


def _demo_drives(count: int = 2, size: int = 64 * 2**20) -> list[str]:
    """Loop devices over files in var/demo/drives/, as root; none otherwise."""
    if os.geteuid() != 0 or shutil.which("losetup") is None:
        return []
    folder = DEMO_DIR / "drives"
    folder.mkdir()
    devices = []
    for number in range(1, count + 1):
        backing = folder / f"demo-drive-{number}.img"
        with backing.open("wb") as disk:
            disk.truncate(size)
        attached = subprocess.run(
            ["losetup", "-f", "--show", str(backing)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if attached.returncode == 0:
            devices.append(attached.stdout.strip())
    return devices


def _detach(devices: list[str]) -> None:
    for device in devices:
        subprocess.run(["losetup", "-d", device], timeout=30, check=False)


def _wait_for(url: str, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer; see the messages above.")


def _wait(running: list[subprocess.Popen[bytes]]) -> int:
    try:
        while all(process.poll() is None for process in running):
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    print("A demo process exited; stopping the others.")
    return 1


def _stop(running: list[subprocess.Popen[bytes]]) -> None:
    for process in running:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in running:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) != 0


if __name__ == "__main__":
    sys.exit(main())
