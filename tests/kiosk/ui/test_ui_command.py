"""`python -m kiosk ui`: its port, and the rules of the banner and the figures."""

from datetime import date, datetime

from kiosk.__main__ import build_parser, main
from kiosk.portal_client import Release
from kiosk.ui import units
from kiosk.ui.header import banner_version
from kiosk.updates import UpdateStatus
from kiosk.versions import Version


def release(version: str) -> Release:
    return Release(Version.parse(version), date(2026, 11, 30), 1, "ab" * 32, "")


def test_port_comes_from_the_command_line():
    assert build_parser().parse_args(["ui", "--port", "9001"]).port == 9001


def test_a_bad_kiosk_port_is_a_settings_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KIOSK_PORT", "eighty")

    assert main(["--data-dir", str(tmp_path), "-q", "ui"]) == 2
    assert "KIOSK_PORT must be a port number" in capsys.readouterr().err


def test_banner_only_for_a_release_newer_than_every_local_image():
    v = Version.parse
    latest = release("v1.10.0")
    newer = UpdateStatus(latest=latest, local=(v("v1.9.0"), v("v1.2.0")))
    same = UpdateStatus(latest=latest, local=(v("v1.10.0"),))
    ahead = UpdateStatus(latest=latest, local=(v("v1.11.0-rc.1"),))
    offline = UpdateStatus(latest=latest, offline_since=datetime(2026, 12, 1))

    assert banner_version(newer, set()) == v("v1.10.0")
    assert banner_version(newer, {v("v1.10.0")}) is None
    assert banner_version(newer, {v("v1.9.0")}) == v("v1.10.0")
    assert banner_version(same, set()) is None
    assert banner_version(ahead, set()) is None
    assert banner_version(offline, set()) is None


def test_durations_read_as_words():
    assert units.duration(None) == "unknown"
    assert units.duration(45.4) == "45 s"
    assert units.duration(200) == "3 min 20 s"
    assert units.duration(3900) == "1 h 05 min"
    assert units.percent(1, 3) == 33
    assert units.percent(5, 0) == 0
