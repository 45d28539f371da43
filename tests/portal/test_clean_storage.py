"""`manage.py clean_storage` removes what a crashed upload left in S3."""

import pytest
from django.core.management import call_command

from portal.releases.uploads import ImageUpload
from tests.conftest import bucket_keys, open_multipart_uploads

pytestmark = pytest.mark.django_db


def _leftovers():
    unfinished = ImageUpload()
    unfinished.write(b"half an image")  # the process died before finish()
    orphan = ImageUpload()
    orphan.write(b"a whole image")
    orphan.finish()  # the process died before the release was saved
    return unfinished.key, orphan.key


def test_removes_unfinished_uploads_and_unreferenced_images(s3, make_release):
    kept = make_release("v1.2.3")
    _leftovers()

    call_command("clean_storage", "--older-than-hours", "0")

    assert open_multipart_uploads(s3) == []
    assert bucket_keys(s3) == [kept.storage_key]


def test_leaves_young_uploads_alone(s3):
    unfinished, orphan = _leftovers()

    call_command("clean_storage")

    assert open_multipart_uploads(s3) == [unfinished]
    assert bucket_keys(s3) == [orphan]


def test_dry_run_changes_nothing(s3, capsys):
    unfinished, orphan = _leftovers()

    call_command("clean_storage", "--older-than-hours", "0", "--dry-run")

    assert f"would remove orphaned image {orphan}" in capsys.readouterr().out
    assert open_multipart_uploads(s3) == [unfinished]
    assert bucket_keys(s3) == [orphan]
