"""A 1 GiB admin upload through gunicorn: the portal's memory stays flat."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from portal.local_s3 import LocalS3, free_port
from tests.portal.conftest import write_image

REPO = Path(__file__).resolve().parents[2]
SIZE = 1024 * 2**20 + 17
# Three 16 MiB part buffers plus the parser's chunks and botocore's copy.
GROWTH_LIMIT_MB = 120


@pytest.fixture
def portal_process(tmp_path, s3: LocalS3):
    """The portal under gunicorn (one worker) with its own SQLite database."""
    env = {
        **os.environ,
        **s3.env(),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        "DJANGO_SUPERUSER_PASSWORD": "admin-password-123",
    }
    manage = [sys.executable, str(REPO / "portal" / "manage.py")]
    subprocess.run(
        [*manage, "migrate"], env=env, check=True, timeout=120, capture_output=True
    )
    create_admin = ["createsuperuser", "--noinput", "--username", "admin"]
    subprocess.run(
        [*manage, *create_admin, "--email", "admin@example.com"],
        env=env, check=True, timeout=60, capture_output=True,
    )  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "portal.wsgi", "--workers", "1",
            "--bind", f"127.0.0.1:{port}", "--timeout", "600",
            "--no-control-socket",
        ],
        env=env, cwd=REPO,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, server)
        yield url, server
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_until_up(
    url: str, server: subprocess.Popen[bytes], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "gunicorn exited"
        try:
            httpx.get(f"{url}/admin/login/", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the portal did not start")


def _worker_memory_mb(master_pid: int, field: str) -> float:
    """VmHWM (peak) or VmRSS (now) of the gunicorn worker, in MB."""
    children = (
        Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    )
    assert len(children) == 1, "expected one gunicorn worker"
    for line in Path(f"/proc/{children[0]}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} in the worker's status")


def test_one_gib_upload_keeps_the_portal_small(portal_process, tmp_path, s3):
    url, server = portal_process
    image = tmp_path / "big.img"
    digest = write_image(image, SIZE)
    with httpx.Client(base_url=url, timeout=600) as client:
        client.get("/admin/login/")
        client.post(
            "/admin/login/",
            data={
                "username": "admin",
                "password": "admin-password-123",
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
            headers={"Referer": f"{url}/admin/login/"},
        )
        before = _worker_memory_mb(server.pid, "VmHWM")
        with image.open("rb") as body:
            response = client.post(
                "/admin/releases/release/add/",
                data={
                    "csrfmiddlewaretoken": client.cookies["csrftoken"],
                    "version": "v1.0.0",
                    "release_date": "2026-12-01",
                    "expected_sha256": digest,
                },
                files={"image": ("big.img", body, "application/octet-stream")},
                headers={"Referer": f"{url}/admin/releases/release/add/"},
            )
    image.unlink()
    peak = _worker_memory_mb(server.pid, "VmHWM")
    print(f"portal worker peak RSS: {before:.0f} MB before, {peak:.0f} MB after 1 GiB")

    assert response.status_code == 302, response.text[-1500:]
    assert response.headers["location"].endswith("/admin/releases/release/")
    keys = s3.client().list_objects_v2(Bucket="firmware")["Contents"]
    assert [item["Size"] for item in keys] == [SIZE]
    assert peak - before < GROWTH_LIMIT_MB
