"""Upload an image from a release pipeline: `publish_release PATH --version v1.2.3`."""

from __future__ import annotations

import logging
from argparse import ArgumentParser
from datetime import date
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError, transaction
from django.utils import timezone
from tqdm import tqdm

from portal.releases import storage
from portal.releases.models import Release
from portal.releases.storage import StorageError
from portal.releases.uploads import ImageUpload, StoredImage
from portal.releases.versions import InvalidVersion, Version

log = logging.getLogger(__name__)

READ_SIZE = 8 * 1024 * 1024
PARALLEL_PARTS = 4


class Command(BaseCommand):
    help = "Upload a firmware image to storage and record it as a release."

    def create_parser(
        self, prog_name: str, subcommand: str, **kwargs: Any
    ) -> CommandParser:
        # --version names the release here, not Django's version.
        return super().create_parser(
            prog_name, subcommand, conflict_handler="resolve", **kwargs
        )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("path", type=Path, help="the image file")
        parser.add_argument("--version", dest="release_version", required=True)
        parser.add_argument("--description", default="")
        parser.add_argument("--release-date", type=date.fromisoformat, default=None)
        parser.add_argument("--expected-sha256", default="")
        parser.add_argument(
            "--uploaded-by",
            metavar="USERNAME",
            help="an existing user, shown as uploader",
        )
        parser.add_argument("--publish", action="store_true", help="publish at once")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        version = self._version(options["release_version"])
        uploader = self._uploader(options["uploaded_by"])
        path: Path = options["path"]
        size = self._size_of(path)
        expected = options["expected_sha256"].lower().removeprefix("sha256:")

        stored = self._upload(path, size, quiet=options["no_progress"])
        if expected and stored.sha256 != expected:
            storage.delete_object(stored.key)
            raise CommandError(
                f"{path} has SHA-256 {stored.sha256}, not the expected {expected}; "
                "nothing was published."
            )
        release = self._record(stored, version, uploader, options)
        self.stdout.write(
            f"{release.version} {release.status}: {release.file_size} bytes, "
            f"sha256:{release.sha256}"
        )

    def _version(self, text: str) -> str:
        try:
            version = str(Version.parse(text))
        except InvalidVersion as exc:
            raise CommandError(str(exc)) from exc
        existing = Release.objects.filter(version=version).first()
        if existing is not None:
            raise CommandError(
                f"Release {version} already exists ({existing.status}); "
                "choose a new version."
            )
        return version

    def _uploader(self, username: str | None) -> User | None:
        if username is None:
            return None
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(
                f"No user is named {username!r}; give an existing username to "
                "--uploaded-by, or leave it out. Nothing was uploaded."
            )
        return user

    def _size_of(self, path: Path) -> int:
        if not path.is_file():
            raise CommandError(f"No image file at {path}.")
        size = path.stat().st_size
        if size == 0:
            raise CommandError(f"{path} is empty; nothing to publish.")
        return size

    def _upload(self, path: Path, size: int, *, quiet: bool) -> StoredImage:
        try:
            upload = ImageUpload(in_flight=PARALLEL_PARTS)
        except StorageError as exc:
            raise CommandError(str(exc)) from exc
        bar = tqdm(total=size, unit="B", unit_scale=True, desc=path.name, disable=quiet)
        try:
            with path.open("rb") as image, bar:
                while chunk := image.read(READ_SIZE):
                    upload.write(chunk)
                    bar.update(len(chunk))
                return upload.finish()
        except (OSError, StorageError, KeyboardInterrupt) as exc:
            upload.abort()
            raise CommandError(
                f"Upload of {path} failed and was removed: {exc}"
            ) from exc

    def _record(
        self,
        stored: StoredImage,
        version: str,
        uploader: User | None,
        options: dict[str, Any],
    ) -> Release:
        now = timezone.now()
        publish = options["publish"]
        release = Release(
            version=version,
            description=options["description"],
            release_date=options["release_date"] or timezone.localdate(),
            file_size=stored.size,
            sha256=stored.sha256,
            storage_key=stored.key,
            status=Release.Status.PUBLISHED if publish else Release.Status.DRAFT,
            uploaded_by=uploader,
            uploaded_at=now,
            published_at=now if publish else None,
        )
        try:
            with transaction.atomic():
                release.save()
        except IntegrityError as exc:
            storage.delete_object(stored.key)
            raise CommandError(
                f"Release {version} was created by someone else meanwhile; "
                "your upload was removed."
            ) from exc
        log.info(
            "release %s recorded status=%s by=%s", version, release.status, uploader
        )
        return release
