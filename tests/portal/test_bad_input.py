"""Client mistakes get a 4xx with a stable code, never a 500."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

DOWNLOAD = "/api/flash-images/download"


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
