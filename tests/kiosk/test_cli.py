"""The command line, run as operators run it: `python -m kiosk ...`."""

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk import __main__ as cli
from kiosk.library import Library
from kiosk.portal_client import PortalClient
from kiosk.versions import Version
from tests.kiosk import portal_fixtures
from tests.kiosk.library_files import stage
from tests.kiosk.portal_fixtures import Portal

pytestmark = pytest.mark.django_db(transaction=True)
portal = portal_fixtures.portal
refused_url = portal_fixtures.refused_url

IMAGE = bytes(range(256)) * 4096 + b"tail"


def run_kiosk(
    data_dir: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    return subprocess.run(
        [sys.executable, "-m", "kiosk", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=data_dir,
        env={**clean, "KIOSK_DATA_DIR": str(data_dir), **env},
    )


def portal_env(where: Portal) -> dict[str, str]:
    return {"KIOSK_API_BASE_URL": where.url, "KIOSK_STATION_TOKEN": where.token}


def put_image(data_dir: Path, version: str, data: bytes = b"image") -> Path:
    library = Library(data_dir / "recommended", data_dir / "quarantine")
    path, sha256 = stage(data_dir / "incoming", version, data)
    return library.add(path, Version.parse(version), sha256).path


def test_check_reports_an_available_update(tmp_path, portal, make_release):
    make_release("v1.2.3", IMAGE)

    result = run_kiosk(tmp_path, "check", **portal_env(portal))

    assert result.returncode == 0, result.stderr
    assert "Latest release: v1.2.3" in result.stdout
    assert "On this station: none" in result.stdout
    assert "Update available: v1.2.3" in result.stdout


def test_download_fetches_the_latest_with_a_progress_bar(
    tmp_path, portal, make_release
):
    make_release("v1.2.2", b"older")
    make_release("v1.2.3", IMAGE)

    result = run_kiosk(tmp_path, "download", **portal_env(portal))

    assert result.returncode == 0, result.stderr
    assert "v1.2.3 is verified and ready" in result.stdout
    assert "100%" in result.stderr
    stored = tmp_path / "recommended" / "FlashingApp_v1.2.3.img"
    assert stored.read_bytes() == IMAGE
    assert not (tmp_path / "recommended" / "FlashingApp_v1.2.2.img").exists()


def test_download_of_a_named_version(tmp_path, portal, make_release):
    make_release("v1.2.2", b"older")
    make_release("v1.2.3", IMAGE)

    result = run_kiosk(tmp_path, "download", "v1.2.2", **portal_env(portal))

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "recommended" / "FlashingApp_v1.2.2.img").read_bytes() == (
        b"older"
    )


def test_an_unknown_version_is_one_sentence_and_exit_1(tmp_path, portal):
    result = run_kiosk(tmp_path, "download", "v9.9.9", **portal_env(portal))

    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        "The portal has no published release v9.9.9; run `check` to see the latest one."
    )
    assert "Traceback" not in result.stderr


def test_a_bad_setting_is_one_sentence_and_exit_2(tmp_path):
    (tmp_path / "settings.json").write_text(json.dumps({"max_stored_version": 3}))

    result = run_kiosk(tmp_path, "images")

    assert result.returncode == 2
    assert result.stderr.startswith("Unknown setting 'max_stored_version'")
    assert "Traceback" not in result.stderr


def test_a_bad_version_argument_is_exit_2(tmp_path):
    result = run_kiosk(
        tmp_path, "download", "../../etc", KIOSK_API_BASE_URL="http://127.0.0.1:9"
    )

    assert result.returncode == 2
    assert "is not a release version" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_a_portal_check_says_how_to_set_one(tmp_path):
    result = run_kiosk(tmp_path, "check")

    assert result.returncode == 2
    assert "No portal is set up; set api_base_url" in result.stderr


def test_images_lists_local_images_newest_first(tmp_path):
    put_image(tmp_path, "v1.9.0")
    put_image(tmp_path, "v1.10.0")

    result = run_kiosk(tmp_path, "images")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["v1.10.0", "v1.9.0"]
    assert lines[0].endswith("FlashingApp_v1.10.0.img")


def test_images_says_when_there_are_none(tmp_path):
    result = run_kiosk(tmp_path, "images")

    assert result.returncode == 0
    assert result.stdout.startswith("No images on this station yet")


def test_images_verify_quarantines_a_damaged_image(tmp_path):
    put_image(tmp_path, "v1.9.0")
    damaged = put_image(tmp_path, "v1.10.0", b"good bytes")
    damaged.write_bytes(b"bad bytes!")

    result = run_kiosk(tmp_path, "images", "--verify")

    assert result.returncode == 1
    assert "v1.9.0 verified." in result.stdout
    assert "v1.10.0 was damaged" in result.stderr
    assert (tmp_path / "quarantine" / "FlashingApp_v1.10.0.img").exists()
    assert "Traceback" not in result.stderr


def test_data_dir_option_wins_over_the_environment(tmp_path):
    chosen = tmp_path / "chosen"
    put_image(chosen, "v1.0.0")

    result = run_kiosk(tmp_path, "--data-dir", str(chosen), "images")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("v1.0.0\t")
    assert not (tmp_path / "logs").exists()


def test_check_while_offline_exits_3_and_logs_it(
    tmp_path, refused_url, monkeypatch, capsys, restore_logging
):
    waits: list[float] = []
    monkeypatch.setattr(
        cli, "PortalClient", functools.partial(PortalClient, sleep=waits.append)
    )
    monkeypatch.setenv("KIOSK_API_BASE_URL", refused_url)
    put_image(tmp_path, "v1.0.0")

    code = cli.main(["--data-dir", str(tmp_path), "-q", "check"])

    out = capsys.readouterr().out
    assert code == 3
    assert out.startswith("Portal unreachable since ")
    assert "On this station: v1.0.0" in out
    assert len(waits) == 4
    logged = (tmp_path / "logs" / "app_errors.log").read_text()
    assert "unreachable" in logged


def test_help_lists_the_commands():
    text = cli.build_parser().format_help()

    for command in ["check", "download", "images", "--data-dir"]:
        assert command in text


def test_check_with_a_refused_token_exits_1(tmp_path, portal):
    env = {**portal_env(portal), "KIOSK_STATION_TOKEN": "revoked"}

    result = run_kiosk(tmp_path, "check", **env)

    assert result.returncode == 1
    assert "refused this station's token" in result.stdout
    assert "Traceback" not in result.stderr


def test_check_says_when_nothing_is_published(tmp_path, portal):
    result = run_kiosk(tmp_path, "check", **portal_env(portal))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("No release has been published yet.")
