import re

import pytest

from portal.releases.models import Release

pytestmark = pytest.mark.django_db(transaction=True)


def test_answers_404_with_a_code_when_nothing_is_published(api, make_release):
    make_release("v1.0.0", status=Release.Status.DRAFT)

    response = api.get("/api/flash-images/latest")

    assert response.status_code == 404
    assert response.json()["code"] == "no_published_release"


def test_returns_exactly_the_documented_fields(api, make_release):
    release = make_release("v1.2.3", b"x" * 1000)
    Release.objects.filter(pk=release.pk).update(description="Line B fixes")

    body = api.get("/api/flash-images/latest").json()

    assert set(body) == {
        "version",
        "release_date",
        "file_size",
        "checksum",
        "description",
    }
    assert body["version"] == "v1.2.3"
    assert body["file_size"] == 1000
    assert body["description"] == "Line B fixes"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", body["checksum"])
    assert body["checksum"] == f"sha256:{release.sha256}"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", body["release_date"])


def test_picks_the_newest_version_not_the_newest_upload(api, make_release):
    make_release("v1.10.0")
    make_release("v1.9.0")
    make_release("v1.11.0-rc.1")
    make_release("v1.12.0", status=Release.Status.DRAFT)
    make_release("v2.0.0", status=Release.Status.WITHDRAWN)

    assert api.get("/api/flash-images/latest").json()["version"] == "v1.11.0-rc.1"

    make_release("v1.11.0")
    assert api.get("/api/flash-images/latest").json()["version"] == "v1.11.0"


def test_lists_published_releases_newest_first(api, make_release):
    for version in ["v1.9.0", "v1.10.0", "v1.2.0"]:
        make_release(version)
    make_release("v1.11.0", status=Release.Status.DRAFT)

    listed = [item["version"] for item in api.get("/api/flash-images/").json()]

    assert listed == ["v1.10.0", "v1.9.0", "v1.2.0"]
