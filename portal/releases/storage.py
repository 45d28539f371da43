"""The one place that talks to S3: multipart uploads, presigned URLs, deletes.

Endpoint, bucket, region and keys come from settings, so AWS S3 and a local
SeaweedFS differ only by configuration. Checksums are computed by the portal
(SHA-256 of the whole image), so botocore's own per-request checksums are
limited to what the S3 API requires; SeaweedFS and AWS both accept that.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.utils import timezone

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

# S3 allows at most 10,000 parts of at least 5 MiB; 16 MiB parts carry a
# 24 GiB image in 1,536 parts and an image of up to 156 GiB in all, while an
# upload buffers only a few parts.
PART_SIZE = 16 * 1024 * 1024
MAX_PARTS = 10_000


class StorageError(Exception):
    """Object storage refused or failed a request."""


@dataclass(frozen=True)
class PresignedDownload:
    url: str
    expires_at: datetime


def _client_config() -> Config:
    return Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": 5, "mode": "standard"},
        max_pool_connections=16,
    )


@cache
def _client(endpoint_url: str | None) -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=settings.S3_REGION,
        aws_access_key_id=settings.S3_ACCESS_KEY_ID or None,
        aws_secret_access_key=settings.S3_SECRET_ACCESS_KEY or None,
        config=_client_config(),
    )


def client() -> S3Client:
    return _client(settings.S3_ENDPOINT_URL)


def _presigning_client() -> S3Client:
    # Stations may reach the store under another name than the portal does.
    return _client(settings.S3_PUBLIC_ENDPOINT_URL or settings.S3_ENDPOINT_URL)


def reset_clients() -> None:
    """Forget cached clients, after the storage settings changed."""
    _client.cache_clear()


def new_image_key() -> str:
    return f"images/{uuid.uuid4().hex}.img"


def ensure_bucket() -> None:
    """Create the bucket if it is missing (local SeaweedFS; AWS buckets exist)."""
    s3 = client()
    try:
        s3.head_bucket(Bucket=settings.S3_BUCKET)
    except ClientError:
        s3.create_bucket(Bucket=settings.S3_BUCKET)
        log.info("created bucket %s", settings.S3_BUCKET)


class MultipartUpload:
    """One object written as numbered parts; abort() leaves nothing behind."""

    def __init__(self, key: str) -> None:
        self.key = key
        self._parts: dict[int, str] = {}
        self._done = False
        try:
            answer = client().create_multipart_upload(
                Bucket=settings.S3_BUCKET, Key=key
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"Could not start the upload of {key}: {exc}") from exc
        self.upload_id = answer["UploadId"]
        log.info("multipart upload started key=%s id=%s", key, self.upload_id)

    def upload_part(self, number: int, data: bytes | bytearray) -> None:
        if not 1 <= number <= MAX_PARTS:
            raise StorageError(
                f"The image needs more than {MAX_PARTS} parts of "
                f"{PART_SIZE // 2**20} MiB; it is too large to store."
            )
        try:
            answer = client().upload_part(
                Bucket=settings.S3_BUCKET,
                Key=self.key,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=data,  # type: ignore[arg-type]  # botocore takes bytearray
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"Part {number} of {self.key} failed: {exc}") from exc
        self._parts[number] = answer["ETag"]

    def complete(self) -> None:
        parts = [
            {"PartNumber": number, "ETag": etag}
            for number, etag in sorted(self._parts.items())
        ]
        try:
            client().complete_multipart_upload(
                Bucket=settings.S3_BUCKET,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"Could not complete {self.key}: {exc}") from exc
        self._done = True
        log.info("multipart upload complete key=%s parts=%d", self.key, len(parts))

    def abort(self) -> None:
        """Drop the parts, or the finished object if complete() already ran."""
        if self._done:
            delete_object(self.key)
            return
        try:
            client().abort_multipart_upload(
                Bucket=settings.S3_BUCKET, Key=self.key, UploadId=self.upload_id
            )
        except (BotoCoreError, ClientError):
            log.exception("could not abort multipart upload key=%s", self.key)
        else:
            log.info("multipart upload aborted key=%s", self.key)


def delete_object(key: str) -> None:
    try:
        client().delete_object(Bucket=settings.S3_BUCKET, Key=key)
    except (BotoCoreError, ClientError):
        log.exception("could not delete object key=%s", key)
    else:
        log.info("deleted object key=%s", key)


def object_size(key: str) -> int:
    try:
        return client().head_object(Bucket=settings.S3_BUCKET, Key=key)["ContentLength"]
    except (BotoCoreError, ClientError) as exc:
        raise StorageError(f"Could not read {key}: {exc}") from exc


def presign_download(key: str, file_name: str) -> PresignedDownload:
    """A GET URL for one object, valid DOWNLOAD_URL_TTL seconds; no request made."""
    ttl = settings.DOWNLOAD_URL_TTL
    expires_at = timezone.now() + timedelta(seconds=ttl)
    url = _presigning_client().generate_presigned_url(
        "get_object",
        Params={
            "Bucket": settings.S3_BUCKET,
            "Key": key,
            "ResponseContentDisposition": f'attachment; filename="{file_name}"',
        },
        ExpiresIn=ttl,
    )
    return PresignedDownload(url=url, expires_at=expires_at.replace(microsecond=0))


def stale_multipart_uploads(older_than: datetime) -> list[tuple[str, str]]:
    """(key, upload id) of unfinished uploads started before `older_than`."""
    answer = client().list_multipart_uploads(Bucket=settings.S3_BUCKET)
    return [
        (upload["Key"], upload["UploadId"])
        for upload in answer.get("Uploads", [])
        if upload["Initiated"] < older_than
    ]


def image_objects(older_than: datetime) -> list[str]:
    """Keys of stored images last written before `older_than`."""
    pages = client().get_paginator("list_objects_v2")
    return [
        item["Key"]
        for page in pages.paginate(Bucket=settings.S3_BUCKET, Prefix="images/")
        for item in page.get("Contents", [])
        if item["LastModified"] < older_than
    ]


def abort_upload(key: str, upload_id: str) -> None:
    client().abort_multipart_upload(
        Bucket=settings.S3_BUCKET, Key=key, UploadId=upload_id
    )
