"""Images stream into S3 while they arrive: hashed in order, sent as parts.

Neither the admin form nor the release command ever holds a whole image in
memory or on the portal's disk: at most `in_flight` parts are buffered
while earlier parts are still on their way to the store.
"""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from threading import BoundedSemaphore
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import HttpRequest

from . import storage

log = logging.getLogger(__name__)

IMAGE_FIELD = "image"


@dataclass(frozen=True)
class StoredImage:
    key: str
    size: int
    sha256: str


class ImageUpload:
    """Hash bytes in arrival order and ship them to S3 as multipart parts."""

    def __init__(self, *, in_flight: int = 2) -> None:
        self.key = storage.new_image_key()
        self._multipart = storage.MultipartUpload(self.key)
        self._sha256 = hashlib.sha256()
        self._size = 0
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._part_number = 0
        self._slots = BoundedSemaphore(in_flight)
        self._pool = ThreadPoolExecutor(in_flight, thread_name_prefix="s3-part")
        self._futures: list[Future[None]] = []
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> None:
        self._sha256.update(data)
        self._size += len(data)
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= storage.PART_SIZE:
            self._send_pending()

    def finish(self) -> StoredImage:
        """Send the last part and complete the object; raises StorageError."""
        if self._pending or self._part_number == 0:
            self._send_pending()
        self._wait_for_parts()
        self._multipart.complete()
        self._closed = True
        return StoredImage(self.key, self._size, self._sha256.hexdigest())

    def abort(self) -> None:
        """Leave nothing in the store: no parts and no object."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._multipart.abort()
        self._closed = True

    def _send_pending(self) -> None:
        self._raise_failed_part()
        body = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        self._part_number += 1
        self._slots.acquire()
        future = self._pool.submit(self._send_part, self._part_number, body)
        self._futures.append(future)

    def _send_part(self, number: int, body: bytes) -> None:
        try:
            self._multipart.upload_part(number, body)
        finally:
            self._slots.release()

    def _raise_failed_part(self) -> None:
        for future in self._futures:
            if future.done() and future.exception() is not None:
                future.result()

    def _wait_for_parts(self) -> None:
        try:
            for future in self._futures:
                future.result()
        finally:
            self._pool.shutdown(wait=True)


class StoredImageFile(UploadedFile[bytes]):
    """What a form sees of an image that already lives in S3."""

    def __init__(self, name: str, stored: StoredImage, content_type: str) -> None:
        super().__init__(None, name, content_type, stored.size)
        self.stored = stored

    def close(self) -> None:
        """Nothing to close: the bytes are in S3 (Django closes uploads at the end)."""


class ImageUploadHandler(FileUploadHandler):
    """Streams the `image` field of a multipart form into S3 as it arrives.

    The view that installs it must call `discard_unless(kept)` when the
    request ends, so an upload that no release kept is removed from S3.
    """

    chunk_size = 4 * 1024 * 1024

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.upload: ImageUpload | None = None
        self.stored: StoredImage | None = None

    def new_file(self, field_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, *args, **kwargs)
        if field_name != IMAGE_FIELD or self.upload is not None:
            raise SkipFile()
        self.upload = ImageUpload()
        log.info("admin upload started name=%s key=%s", self.file_name, self.upload.key)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        assert self.upload is not None
        self.upload.write(raw_data)

    def file_complete(self, file_size: int) -> StoredImageFile | None:
        if self.upload is None:
            return None
        self.stored = self.upload.finish()
        log.info(
            "admin upload stored key=%s size=%d sha256=%s",
            self.stored.key,
            self.stored.size,
            self.stored.sha256,
        )
        return StoredImageFile(
            self.file_name or "image.img", self.stored, self.content_type or ""
        )

    def upload_interrupted(self) -> None:
        self._abort()

    def discard_unless(self, kept: bool) -> None:
        if not kept:
            self._abort()

    def _abort(self) -> None:
        if self.upload is not None:
            log.info("admin upload discarded key=%s", self.upload.key)
            self.upload.abort()
            self.upload = None
