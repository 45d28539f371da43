"""Release managers upload images through the admin; they stream into S3."""

import hashlib
import socket
import time
from pathlib import Path

import pytest

from portal.releases.models import Release
from tests.conftest import bucket_keys, open_multipart_uploads
from tests.portal.conftest import login, write_image

pytestmark = pytest.mark.django_db(transaction=True)

ADD_URL = "/admin/releases/release/add/"
SIZE = 9 * 1024 * 1024 + 123  # more than one 4 MiB handler chunk, odd length


@pytest.fixture
def manager(live_server, release_manager):
    with login(live_server, "rm", "rm-password-123") as client:
        yield client


@pytest.fixture
def image(tmp_path) -> tuple[Path, str]:
    path = tmp_path / "build.img"
    return path, write_image(path, SIZE)


def upload(client, live_server, image_path, **fields):
    data = {
        "csrfmiddlewaretoken": client.cookies["csrftoken"],
        "version": "v1.2.3",
        "release_date": "2026-12-01",
        "description": "Line B",
        **fields,
    }
    with image_path.open("rb") as body:
        return client.post(
            ADD_URL,
            data=data,
            files={"image": ("build.img", body, "application/octet-stream")},
            headers={"Referer": f"{live_server.url}{ADD_URL}"},
        )


def test_upload_stores_the_image_and_its_checksum(manager, live_server, image, s3):
    path, digest = image

    response = upload(manager, live_server, path, publish_now="on")

    assert response.status_code == 302, response.text[-2000:]
    release = Release.objects.get(version="v1.2.3")
    assert release.sha256 == digest
    assert release.file_size == SIZE
    assert release.status == Release.Status.PUBLISHED
    assert release.uploaded_by is not None
    assert release.uploaded_by.username == "rm"
    stored = s3.client().get_object(Bucket="firmware", Key=release.storage_key)
    assert hashlib.sha256(stored["Body"].read()).hexdigest() == digest
    assert open_multipart_uploads(s3) == []


def test_matching_expected_checksum_is_accepted(manager, live_server, image):
    path, digest = image

    response = upload(manager, live_server, path, expected_sha256=f"sha256:{digest}")

    assert response.status_code == 302
    assert Release.objects.get().status == Release.Status.DRAFT


def test_checksum_mismatch_rejects_the_release_and_removes_the_object(
    manager, live_server, image, s3
):
    path, _ = image

    response = upload(manager, live_server, path, expected_sha256="0" * 64)

    assert response.status_code == 200
    assert "not the expected" in response.text
    assert not Release.objects.exists()
    assert bucket_keys(s3) == []
    assert open_multipart_uploads(s3) == []


def test_duplicate_version_is_refused_and_leaves_no_object(
    manager, live_server, image, s3, make_release
):
    make_release("v1.2.3")
    path, _ = image

    response = upload(manager, live_server, path)

    assert response.status_code == 200
    assert "already exists" in response.text
    assert Release.objects.count() == 1
    assert len(bucket_keys(s3)) == 1


def test_malformed_version_is_refused(manager, live_server, image, s3):
    path, _ = image

    response = upload(manager, live_server, path, version="v1.2.3/../../")

    assert response.status_code == 200
    assert "not a release version" in response.text
    assert bucket_keys(s3) == []


def test_upload_without_csrf_token_is_refused_and_discarded(
    manager, live_server, image, s3
):
    path, _ = image

    response = upload(manager, live_server, path, csrfmiddlewaretoken="x" * 64)

    assert response.status_code == 403
    assert not Release.objects.exists()
    assert bucket_keys(s3) == []
    assert open_multipart_uploads(s3) == []


def test_people_without_release_permissions_cannot_upload(
    live_server, django_user_model, image, s3
):
    django_user_model.objects.create_user(
        "qa", password="qa-password-123", is_staff=True
    )
    path, _ = image
    with login(live_server, "qa", "qa-password-123") as client:
        response = upload(client, live_server, path)

    assert response.status_code == 403
    assert bucket_keys(s3) == []


def test_aborted_upload_leaves_no_parts_behind(manager, live_server, s3):
    boundary = "----flashboundary"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n'
        f"{manager.cookies['csrftoken']}\r\n"
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="version"\r\n\r\nv1.2.3\r\n'
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="image"; filename="a.img"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    cookies = "; ".join(f"{k}={v}" for k, v in manager.cookies.items())
    host, port = live_server.url.removeprefix("http://").split(":")
    request = (
        f"POST {ADD_URL} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(head) + 100 * 2**20}\r\n"
        f"Cookie: {cookies}\r\nReferer: {live_server.url}{ADD_URL}\r\n\r\n"
    ).encode()

    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(request + head + b"\0" * (40 * 2**20))
        _wait_for(lambda: open_multipart_uploads(s3) != [])  # it did start streaming
    _wait_for(lambda: open_multipart_uploads(s3) == [])

    assert bucket_keys(s3) == []
    assert not Release.objects.exists()


def _wait_for(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def test_unreachable_store_gives_a_plain_error_not_a_crash(
    manager, live_server, image, settings
):
    from portal.local_s3 import free_port
    from portal.releases import storage

    settings.S3_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    storage.reset_clients()
    path, _ = image

    response = upload(manager, live_server, path)
    page = manager.get(ADD_URL)

    assert response.status_code == 302
    assert "could not be stored" in page.text
    assert not Release.objects.exists()
