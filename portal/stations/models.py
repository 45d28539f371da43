from __future__ import annotations

import hashlib
import secrets

from django.db import models
from django.utils import timezone

TOKEN_PREFIX_LENGTH = 8


def hash_token(token: str) -> str:
    # Tokens are 256 random bits, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


class Station(models.Model):
    name = models.CharField(max_length=100, unique=True)
    location = models.CharField(max_length=200, blank=True)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(max_length=TOKEN_PREFIX_LENGTH, editable=False)
    is_active = models.BooleanField(
        "active", default=True, help_text="An inactive station's token is refused."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_seen_at = models.DateTimeField(null=True, blank=True, editable=False)
    app_version = models.CharField(max_length=50, blank=True, editable=False)
    images_held = models.JSONField(default=list, blank=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def record_report(self, app_version: str, images_held: list[str]) -> None:
        """What the station said it runs and holds, saved only when it changed."""
        if (app_version, images_held) == (self.app_version, self.images_held):
            return
        self.app_version, self.images_held = app_version, images_held
        Station.objects.filter(pk=self.pk).update(
            app_version=app_version, images_held=images_held
        )

    def issue_token(self) -> str:
        """Set a new token and return it; only its hash is kept."""
        token = secrets.token_urlsafe(32)
        self.token_hash = hash_token(token)
        self.token_prefix = token[:TOKEN_PREFIX_LENGTH]
        return token
