"""`manage.py publish_release` for release pipelines."""

import hashlib

import pytest
from django.core.management import CommandError, call_command

from portal.releases.models import Release
from tests.conftest import bucket_keys, open_multipart_uploads
from tests.portal.conftest import write_image

pytestmark = pytest.mark.django_db


def test_publishes_a_multi_part_image(tmp_path, s3, monkeypatch):
    monkeypatch.setattr("portal.releases.storage.PART_SIZE", 5 * 2**20)
    path = tmp_path / "fw.img"
    digest = write_image(path, 23 * 2**20 + 7)  # five parts, the last one short

    call_command(
        "publish_release", str(path), "--version", "v1.2.3",
        "--description", "Line B", "--publish", "--no-progress",
    )  # fmt: skip

    release = Release.objects.get(version="v1.2.3")
    assert release.status == Release.Status.PUBLISHED
    assert release.published_at is not None
    assert release.sha256 == digest
    assert release.file_size == path.stat().st_size
    body = s3.client().get_object(Bucket="firmware", Key=release.storage_key)["Body"]
    assert hashlib.sha256(body.read()).hexdigest() == digest


def test_without_publish_it_stays_a_draft(tmp_path):
    path = tmp_path / "fw.img"
    write_image(path, 1000)

    call_command("publish_release", str(path), "--version", "v1.2.3", "--no-progress")

    assert Release.objects.get().status == Release.Status.DRAFT


def test_records_the_named_uploader(tmp_path, django_user_model):
    uploader = django_user_model.objects.create_user("pipeline")
    path = tmp_path / "fw.img"
    write_image(path, 1000)

    call_command(
        "publish_release", str(path), "--version", "v1.2.3",
        "--uploaded-by", "pipeline", "--no-progress",
    )  # fmt: skip

    assert Release.objects.get().uploaded_by == uploader


def test_without_uploaded_by_no_uploader_is_recorded(tmp_path):
    path = tmp_path / "fw.img"
    write_image(path, 1000)

    call_command("publish_release", str(path), "--version", "v1.2.3", "--no-progress")

    assert Release.objects.get().uploaded_by is None


def test_unknown_uploader_fails_before_uploading(tmp_path, s3):
    path = tmp_path / "fw.img"
    write_image(path, 1000)

    with pytest.raises(CommandError, match="No user is named 'nobody'"):
        call_command(
            "publish_release", str(path), "--version", "v1.2.3",
            "--uploaded-by", "nobody", "--no-progress",
        )  # fmt: skip

    assert not Release.objects.exists()
    assert bucket_keys(s3) == []
    assert open_multipart_uploads(s3) == []


def test_duplicate_version_fails_before_uploading(tmp_path, s3, make_release):
    make_release("v1.2.3")
    path = tmp_path / "fw.img"
    write_image(path, 1000)

    with pytest.raises(CommandError, match="already exists"):
        call_command("publish_release", str(path), "--version", "v1.2.3")

    assert len(bucket_keys(s3)) == 1


def test_checksum_mismatch_publishes_nothing(tmp_path, s3):
    path = tmp_path / "fw.img"
    write_image(path, 1000)

    with pytest.raises(CommandError, match="not the expected"):
        call_command(
            "publish_release", str(path), "--version", "v1.2.3",
            "--expected-sha256", "sha256:" + "0" * 64, "--no-progress",
        )  # fmt: skip

    assert not Release.objects.exists()
    assert bucket_keys(s3) == []
    assert open_multipart_uploads(s3) == []


@pytest.mark.parametrize(
    ("version", "message"),
    [("1.2.3", "not a release version"), ("../x", "not a release version")],
)
def test_bad_versions_are_refused(tmp_path, version, message):
    path = tmp_path / "fw.img"
    write_image(path, 10)

    with pytest.raises(CommandError, match=message):
        call_command("publish_release", str(path), "--version", version)


def test_missing_and_empty_files_are_refused(tmp_path):
    with pytest.raises(CommandError, match="No image file"):
        call_command(
            "publish_release", str(tmp_path / "nope.img"), "--version", "v1.0.0"
        )

    (tmp_path / "empty.img").touch()
    with pytest.raises(CommandError, match="is empty"):
        call_command(
            "publish_release", str(tmp_path / "empty.img"), "--version", "v1.0.0"
        )
