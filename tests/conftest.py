"""Shared fixtures: one real SeaweedFS per session, releases and stations.

Kiosk tests use them too, to run against a real portal and a real store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from django.conf import settings

from portal.local_s3 import LocalS3
from portal.releases import storage
from portal.releases.models import Release
from portal.releases.uploads import ImageUpload
from portal.stations.models import Station


@pytest.fixture(scope="session")
def s3_server() -> Iterator[LocalS3]:
    with LocalS3() as server:
        yield server


@pytest.fixture
def s3(s3_server: LocalS3, settings) -> Iterator[LocalS3]:
    """Every test sees an empty bucket of the session's store."""
    for name, value in s3_server.env().items():
        setattr(settings, name, value)
    storage.reset_clients()
    storage.ensure_bucket()
    yield s3_server
    for name, value in s3_server.env().items():  # a test may have pointed elsewhere
        setattr(settings, name, value)
    storage.reset_clients()
    client = s3_server.client()
    for key, upload_id in storage.stale_multipart_uploads(_far_future()):
        client.abort_multipart_upload(Bucket="firmware", Key=key, UploadId=upload_id)
    for key in bucket_keys(s3_server):
        client.delete_object(Bucket="firmware", Key=key)
    storage.reset_clients()


def _far_future() -> datetime:
    return datetime(9999, 1, 1, tzinfo=UTC)


def bucket_keys(server: LocalS3) -> list[str]:
    answer = server.client().list_objects_v2(Bucket=settings.S3_BUCKET)
    return [item["Key"] for item in answer.get("Contents", [])]


def open_multipart_uploads(server: LocalS3) -> list[str]:
    answer = server.client().list_multipart_uploads(Bucket=settings.S3_BUCKET)
    return [item["Key"] for item in answer.get("Uploads", [])]


@pytest.fixture
def make_release(db) -> Callable[..., Release]:
    """Store `data` in S3 through the portal's own upload path and record it."""

    def make(
        version: str,
        data: bytes = b"firmware image\n",
        status: str = Release.Status.PUBLISHED,
    ) -> Release:
        upload = ImageUpload()
        upload.write(data)
        stored = upload.finish()
        assert stored.sha256 == hashlib.sha256(data).hexdigest()
        return Release.objects.create(
            version=version,
            file_size=stored.size,
            sha256=stored.sha256,
            storage_key=stored.key,
            status=status,
        )

    return make


@pytest.fixture
def station_token(db) -> str:
    station = Station(name="Line 1 / Station 3", location="Hall B")
    token = station.issue_token()
    station.save()
    return token


@pytest.fixture
def station(station_token: str) -> Station:
    return Station.objects.get(name="Line 1 / Station 3")


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """The portal caches its latest answer per process; tests start without it."""
    from django.core.cache import cache

    cache.clear()
