"""Client mistakes get a 4xx with a stable code, never a 500."""

from base64 import b64encode

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

DOWNLOAD = "/api/flash-images/download"
HISTORY = "/api/flash-records/"


def post_raw(api, body: bytes, content_type="application/json"):
    return api.post(DOWNLOAD, content=body, headers={"Content-Type": content_type})


def test_malformed_json_is_a_parse_error(api):
    response = post_raw(api, b'{"version": ')

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_missing_version_names_the_field(api):
    response = api.post(DOWNLOAD, json={})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "required"
    assert "version" in body["fields"]


@pytest.mark.parametrize(
    "version",
    [
        "../x",
        "v1.2.3/../../",
        "1.2.3",
        "v1.2",
        "v1.2.3\u0000",
        "v\u00e9.1.2",
        "v1.2.3\t-x",
    ],
)
def test_malformed_versions_are_400(api, version):
    response = api.post(DOWNLOAD, json={"version": version})

    assert response.status_code == 400
    assert response.json()["code"] in {"invalid_version", "null_characters_not_allowed"}


def test_over_long_version_is_400(api):
    response = api.post(DOWNLOAD, json={"version": "v1.2.3-" + "a" * 5000})

    assert response.status_code == 400
    assert response.json()["code"] == "max_length"


@pytest.mark.parametrize("body", [b"[]", b'"v1.2.3"', b"null", b'{"version": 123}'])
def test_wrong_json_shapes_are_400(api, body):
    response = post_raw(api, body)

    assert response.status_code == 400


def test_huge_body_is_413(api):
    response = post_raw(api, b'{"version": "' + b"a" * (2 * 2**20) + b'"}')

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_unsupported_content_type_is_415(api):
    response = post_raw(api, b"version=v1.2.3", "application/x-www-form-urlencoded")

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_wrong_method_is_405(api):
    response = api.get(DOWNLOAD)

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "params",
    [{"since": "9999-12-31T23:59:59-14:00"}, {"until": "0001-01-01T00:00:00+14:00"}],
)
def test_history_dates_beyond_the_calendar_in_utc_are_400(qa, params):
    response = qa.get(HISTORY, params=params)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_filter"


def test_history_dates_with_any_offset_python_takes_are_served(qa):
    # PostgreSQL itself refuses offsets beyond 15:59.
    response = qa.get(HISTORY, params={"since": "2026-12-01T08:00:00-19:59"})

    assert response.status_code == 200


@pytest.mark.parametrize(
    "position", ["garbage", "2026-13-01 08:00:00+00:00", "9999-12-31 23:59:59-14:00"]
)
@pytest.mark.parametrize("path", [HISTORY, "/api/serials/S3K9/flash-records"])
def test_tampered_history_cursors_are_404(qa, path, position):
    cursor = b64encode(f"p={position}".encode()).decode()

    response = qa.get(path, params={"cursor": cursor})

    assert response.status_code == 404
    assert "cursor is not valid" in response.json()["detail"]


def test_serial_with_a_control_character_is_400(qa):
    response = qa.get("/api/serials/S3K9%00/flash-records")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_serial"


def test_history_cursor_with_a_large_offset_is_served(qa):
    cursor = b64encode(b"p=2026-12-01 08:00:00-19:59").decode()

    response = qa.get(HISTORY, params={"cursor": cursor})

    assert response.status_code == 200
