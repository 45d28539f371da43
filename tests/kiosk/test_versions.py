import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.versions import InvalidVersion, Version, from_image_name
from portal.releases.versions import Version as PortalVersion
from portal.releases.versions import is_valid


def test_orders_numbers_as_numbers():
    assert Version.parse("v1.10.0") > Version.parse("v1.9.0")
    assert Version.parse("v2.0.0") > Version.parse("v1.99.99")


def test_orders_pre_releases_by_semver_precedence():
    ordered = [
        "v1.3.0-0",
        "v1.3.0-2",
        "v1.3.0-10",
        "v1.3.0-alpha",
        "v1.3.0-alpha.1",
        "v1.3.0-alpha.beta",
        "v1.3.0-beta.2",
        "v1.3.0-beta.11",
        "v1.3.0-rc.1",
        "v1.3.0",
        "v1.3.1-rc.1",
    ]
    assert [str(v) for v in sorted(map(Version.parse, reversed(ordered)))] == ordered


def test_equal_versions_are_equal_and_hash_alike():
    assert Version.parse("v1.2.3") == Version.parse("v1.2.3")
    assert len({Version.parse("v1.2.3"), Version.parse("v1.2.3")}) == 1


def test_maps_versions_to_image_names_and_back():
    version = Version.parse("v1.3.0-rc.1")

    assert version.image_name == "FlashingApp_v1.3.0-rc.1.img"
    assert from_image_name("FlashingApp_v1.3.0-rc.1.img") == version
    assert version.is_prerelease
    assert not Version.parse("v1.3.0").is_prerelease


@pytest.mark.parametrize(
    "name",
    [
        "FlashingApp_v1.2.3.img.sha256",
        "FlashingApp_v1.2.img",
        "FlashingApp_../v1.2.3.img",
        "flashingapp_v1.2.3.img",
        "FlashingApp_v1.2.3.iso",
        ".incoming-FlashingApp_v1.2.3.img",
        "notes.txt",
    ],
)
def test_other_file_names_are_not_images(name):
    assert from_image_name(name) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1.2.3",
        "V1.2.3",
        "v1.2",
        "v01.2.3",
        "v1.2.3-",
        "v1.2.3-rc..1",
        "v1.2.3-01",
        "v1.2.3+build",
        "v1.2.3/../../etc",
        "../v1.2.3",
        "v1.2.3\n",
        " v1.2.3",
        "v\uff11.2.3",
        "v1.2.3-r\u00e9",
        "v1.2.3-" + "a" * 58,
        "v9999999999.0.0",
    ],
)
def test_refuses_anything_that_is_not_a_version(text):
    with pytest.raises(InvalidVersion, match="not a release version"):
        Version.parse(text)


def test_accepts_the_longest_allowed_version():
    text = "v1.2.3-" + "a" * 57

    assert len(text) == 64
    assert str(Version.parse(text)) == text


_PIECES = st.sampled_from(["0", "1", "9", "10", "01", "rc", "alpha", "-", "x9", "a-b"])
_TEXTS = st.builds(
    lambda core, pre: "v" + ".".join(core) + ("-" + ".".join(pre) if pre else ""),
    st.lists(_PIECES, min_size=2, max_size=4),
    st.lists(_PIECES, max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(_TEXTS, _TEXTS)
def test_agrees_with_the_portal_on_validity_and_order(first, second):
    assert is_valid(first) == _kiosk_accepts(first)
    if is_valid(first) and is_valid(second):
        portal_says = PortalVersion.parse(first) < PortalVersion.parse(second)
        assert (Version.parse(first) < Version.parse(second)) == portal_says


def _kiosk_accepts(text):
    try:
        Version.parse(text)
    except InvalidVersion:
        return False
    return True
