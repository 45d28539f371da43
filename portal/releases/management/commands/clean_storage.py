"""Remove what a crashed upload can leave in S3: open multipart uploads and
finished objects that no release refers to."""

from __future__ import annotations

from argparse import ArgumentParser
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from portal.releases import storage
from portal.releases.models import Release


class Command(BaseCommand):
    help = "Abort stale multipart uploads and delete images no release refers to."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--older-than-hours",
            type=float,
            default=24.0,
            help="leave younger uploads alone: they may still be running (default 24)",
        )
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        cutoff = timezone.now() - timedelta(hours=options["older_than_hours"])
        dry_run = options["dry_run"]
        verb = "would remove" if dry_run else "removed"

        for key, upload_id in storage.stale_multipart_uploads(cutoff):
            if not dry_run:
                storage.abort_upload(key, upload_id)
            self.stdout.write(f"{verb} unfinished upload {key}")

        referenced = set(Release.objects.values_list("storage_key", flat=True))
        for key in storage.image_objects(cutoff):
            if key in referenced:
                continue
            if not dry_run:
                storage.delete_object(key)
            self.stdout.write(f"{verb} orphaned image {key}")
