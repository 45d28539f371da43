"""Stations authenticate with `Authorization: Bearer <token>`."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache
from django.db.models.signals import pre_save
from django.dispatch import receiver
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from .models import Station, hash_token

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView

# Writing last_seen on every request would cost a write per call.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)


class StationPrincipal:
    """request.user for a station: authenticated, but no Django user."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False
    is_anonymous = False

    def __init__(self, station: Station) -> None:
        self.station = station

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return False

    def __str__(self) -> str:
        return f"station {self.station.name}"


class StationTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[StationPrincipal, Station] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode(errors="replace") != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "The Authorization header must be 'Bearer <station token>'."
            )
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(
                "The station token is not valid."
            ) from None
        station = _station_with(hash_token(token))
        if station is None or not station.is_active:
            raise exceptions.AuthenticationFailed(
                "The station token is not valid or was revoked; ask an "
                "administrator for a new one."
            )
        _touch(station)
        return StationPrincipal(station), station

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="stations"'


def _cache_key(token_hash: str) -> str:
    return f"stations:token:{token_hash}"


def _station_with(token_hash: str) -> Station | None:
    """The station holding a token; known tokens are remembered briefly.

    Every station call starts here, so each process keeps found stations for
    STATION_CACHE_TTL seconds. Saving a station forgets its entry in this
    process; other processes follow within the TTL.
    """
    station: Station | None = cache.get(_cache_key(token_hash))
    if station is None:
        station = Station.objects.filter(token_hash=token_hash).first()
        if station is not None:  # unknown tokens are not kept: anyone can send them
            cache.set(_cache_key(token_hash), station, settings.STATION_CACHE_TTL)
    return station


@receiver(pre_save, sender=Station)
def _forget_station(instance: Station, **kwargs: object) -> None:
    stored = Station.objects.filter(pk=instance.pk).values_list("token_hash", flat=True)
    for token_hash in {*stored, instance.token_hash}:  # the old token and the new
        cache.delete(_cache_key(token_hash))


def _touch(station: Station) -> None:
    now = timezone.now()
    if station.last_seen_at and now - station.last_seen_at < LAST_SEEN_RESOLUTION:
        return
    Station.objects.filter(pk=station.pk).update(last_seen_at=now)
    station.last_seen_at = now
    cache.set(_cache_key(station.token_hash), station, settings.STATION_CACHE_TTL)


def station_of(request: Request) -> Station | None:
    return request.auth if isinstance(request.auth, Station) else None


class IsStation(permissions.BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return station_of(request) is not None
