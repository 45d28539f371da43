import pytest

from portal.releases.versions import InvalidVersion, Version


def test_orders_numbers_as_numbers():
    assert Version.parse("v1.10.0") > Version.parse("v1.9.0")
    assert Version.parse("v2.0.0") > Version.parse("v1.99.99")


def test_pre_releases_come_before_their_release():
    ordered = [
        "v1.3.0-alpha",
        "v1.3.0-alpha.1",
        "v1.3.0-alpha.beta",
        "v1.3.0-beta.2",
        "v1.3.0-beta.11",
        "v1.3.0-rc.1",
        "v1.3.0",
        "v1.3.1-rc.1",
    ]
    assert sorted(ordered, key=Version.parse) == ordered
    assert sorted(reversed(ordered), key=Version.parse) == ordered


def test_round_trips_and_names_the_image():
    version = Version.parse("v1.3.0-rc.1")
    assert str(version) == "v1.3.0-rc.1"
    assert version.image_name == "FlashingApp_v1.3.0-rc.1.img"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1.2.3",
        "v1.2",
        "v01.2.3",
        "v1.2.3-",
        "v1.2.3-rc..1",
        "v1.2.3-01",
        "v1.2.3+build",
        "v1.2.3/../../",
        "../x",
        "v1.2.3\n",
        "v\uff11.2.3",
        "v1\uff11.2.3",
        "v1.2.3-" + "a" * 80,
        "v99999999999.0.0",
    ],
)
def test_refuses_anything_that_is_not_a_version(text):
    with pytest.raises(InvalidVersion, match="not a release version"):
        Version.parse(text)
