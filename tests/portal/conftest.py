"""Portal fixtures: people, HTTP clients and image files."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from portal.flashes.apps import QA
from portal.local_s3 import LocalS3
from portal.releases.apps import RELEASE_MANAGERS


@pytest.fixture(autouse=True)
def _empty_store(s3: LocalS3) -> None:
    """Every portal test runs against the real store, with an empty bucket."""


@pytest.fixture
def release_manager(db) -> User:
    call_command("migrate", verbosity=0)  # post_migrate makes the group
    user = User.objects.create_user("rm", password="rm-password-123", is_staff=True)
    user.groups.add(Group.objects.get(name=RELEASE_MANAGERS))
    return user


@pytest.fixture
def qa(live_server, django_user_model) -> Iterator[httpx.Client]:
    """A QA person signed in to the admin: reads history, changes nothing."""
    user = django_user_model.objects.create_user(
        "qa", password="qa-password-123", is_staff=True
    )
    user.groups.add(Group.objects.get(name=QA))
    with login(live_server, "qa", "qa-password-123") as client:
        yield client


@pytest.fixture
def api(live_server, station_token: str) -> Iterator[httpx.Client]:
    """A station's HTTP client against the portal served on 127.0.0.1."""
    with httpx.Client(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {station_token}"},
        timeout=30,
    ) as client:
        yield client


@contextmanager
def login(live_server, username: str, password: str) -> Iterator[httpx.Client]:
    """A browser-like session: cookies and CSRF token after the admin login."""
    with httpx.Client(base_url=live_server.url, timeout=120) as client:
        client.get("/admin/login/")
        yield _log_in(client, live_server, username, password)


def _log_in(client: httpx.Client, live_server, username: str, password: str):
    response = client.post(
        "/admin/login/?next=/admin/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
            "next": "/admin/",
        },
        headers={"Referer": f"{live_server.url}/admin/login/"},
    )
    assert response.status_code == 302, response.text[:500]
    return client


def write_image(path: Path, size: int) -> str:
    """A file of `size` pseudo-random bytes; returns its SHA-256."""
    block = hashlib.sha256(str(size).encode()).digest() * (1 << 15)  # 1 MiB
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            piece = block[: min(left, len(block))]
            out.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()
