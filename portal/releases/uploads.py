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
from queue import Empty, Queue
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
    """Hash bytes in arrival order and ship them to S3 as multipart parts.

    Parts are filled into at most `in_flight + 1` reused buffers; when all are
    on their way to the store, write() waits, so memory stays bounded however
    fast the bytes arrive.
    """

    def __init__(self, *, in_flight: int = 2) -> None:
        self.key = storage.new_image_key()
        self._part_size = storage.PART_SIZE
        self._multipart = storage.MultipartUpload(self.key)
        self._sha256 = hashlib.sha256()
        self._size = 0
        self._part_number = 0
        self._buffers_left = in_flight + 1
        self._free: Queue[bytearray] = Queue()
        self._buffer = self._take_buffer()
        self._filled = 0
        self._pool = ThreadPoolExecutor(in_flight, thread_name_prefix="s3-part")
        self._futures: list[Future[None]] = []

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> None:
        self._sha256.update(data)
        self._size += len(data)
        view = memoryview(data)
        while view:
            room = self._part_size - self._filled
            piece, view = view[:room], view[room:]
            self._buffer[self._filled : self._filled + len(piece)] = piece
            self._filled += len(piece)
            if self._filled == self._part_size:
                self._send_buffer()

    def finish(self) -> StoredImage:
        """Send the last part and complete the object; raises StorageError."""
        if self._filled or self._part_number == 0:
            self._send_buffer()
        try:
            for future in self._futures:
                future.result()
        finally:
            self._pool.shutdown(wait=True)
        self._multipart.complete()
        return StoredImage(self.key, self._size, self._sha256.hexdigest())

    def abort(self) -> None:
        """Leave nothing in the store: no parts and no object."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._multipart.abort()

    def _take_buffer(self) -> bytearray:
        try:
            return self._free.get_nowait()
        except Empty:
            if self._buffers_left:
                self._buffers_left -= 1
                return bytearray(self._part_size)
            return self._free.get()  # back-pressure: wait for a part to finish

    def _send_buffer(self) -> None:
        for future in self._futures:
            if future.done():
                future.result()  # raise a failed part's error now, not at the end
        self._part_number += 1
        future = self._pool.submit(
            self._send_part, self._part_number, self._buffer, self._filled
        )
        self._futures.append(future)
        self._buffer, self._filled = self._take_buffer(), 0

    def _send_part(self, number: int, buffer: bytearray, length: int) -> None:
        try:
            body = buffer if length == len(buffer) else buffer[:length]
            self._multipart.upload_part(number, body)
        finally:
            self._free.put(buffer)


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
