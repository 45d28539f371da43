"""`make demo`: the portal with published demo releases, on loopback.

Starts a private SeaweedFS, a fresh SQLite database under var/demo/, an
admin, a release manager and a demo station, publishes two generated images
(v1.2.2 and v1.2.3) and serves the portal with gunicorn until Ctrl-C.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
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
    if not _port_free(port):
        print(f"Port {port} on {HOST} is in use; set PORTAL_DEMO_PORT to another port.")
        return 1
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)

    with LocalS3(DEMO_DIR / "s3") as s3:
        os.environ.update(s3.env())
        os.environ["DATABASE_URL"] = f"sqlite:///{DEMO_DIR / 'portal.sqlite3'}"
        os.environ.setdefault("PORTAL_DEBUG", "1")
        os.environ.setdefault("PORTAL_SECRET_KEY", secrets.token_urlsafe(40))
        accounts = _prepare()
        _print_addresses(port, s3, accounts)
        return _serve(port)


def _prepare() -> dict[str, str]:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

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
        "station token": token,
    }


def _write_demo_image(path: Path, seed: str) -> None:
    block = hashlib.sha256(seed.encode()).digest() * (2**20 // 32)
    with path.open("wb") as image:
        for _ in range(IMAGE_SIZE // len(block)):
            image.write(block)


def _print_addresses(port: int, s3: LocalS3, accounts: dict[str, str]) -> None:
    base = f"http://{HOST}:{port}"
    print(
        f"""
Portal          {base}/admin/
  admin             user admin, password {accounts["admin"]}
  release manager   user release-manager, password {accounts["release-manager"]}
API docs        {base}/api/docs
Station token   {accounts["station token"]}  (also in {DEMO_DIR / "station-token"})
  try: curl -H "Authorization: Bearer $(cat {DEMO_DIR / "station-token"})" \\
            {base}/api/flash-images/latest
S3 (SeaweedFS)  {s3.endpoint_url}  bucket firmware
Press Ctrl-C to stop everything.
""",
        flush=True,
    )


def _serve(port: int) -> int:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "portal.wsgi",
            "--bind",
            f"{HOST}:{port}",
            "--workers",
            "2",
            "--timeout",
            "3600",
            "--no-control-socket",
        ],
        env=os.environ.copy(),
    )
    try:
        return server.wait()
    except KeyboardInterrupt:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        print("Stopped.")
        return 0


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) != 0


if __name__ == "__main__":
    sys.exit(main())
