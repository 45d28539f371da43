import json
from pathlib import Path

import pytest

from kiosk import config
from kiosk.errors import ConfigError


def write_settings(folder: Path, values: object) -> None:
    (folder / "settings.json").write_text(json.dumps(values))


def test_defaults_apply_without_a_settings_file(tmp_path):
    settings = config.load(tmp_path, environ={})

    assert settings.api_base_url == ""
    assert settings.check_interval == "startup_only"
    assert settings.max_stored_versions == 3
    assert settings.download_timeout == 3600.0
    assert settings.download_segments == 4
    assert settings.allow_flash_without_serial is False
    assert settings.recommended_dir == tmp_path / "recommended"


def test_derives_the_station_folders_from_the_data_dir(tmp_path):
    settings = config.load(tmp_path, environ={})
    settings.make_dirs()

    assert settings.staging_dir == tmp_path / "temp" / "download_staging"
    assert settings.logs_dir == tmp_path / "logs"
    assert settings.database_path == tmp_path / "kiosk.sqlite3"
    assert settings.quarantine_dir == tmp_path / "quarantine"
    for folder in ["recommended", "temp/download_staging", "logs", "quarantine"]:
        assert (tmp_path / folder).is_dir()


def test_reads_every_key_from_the_file(tmp_path):
    write_settings(
        tmp_path,
        {
            "api_base_url": "https://portal.example.com",
            "station_token": "secret",
            "station_name": "Line 1 / Station 3",
            "check_interval": "manual",
            "max_stored_versions": 5,
            "download_timeout": 120,
            "recommended_path": "/srv/images",
            "download_segments": 8,
            "allow_flash_without_serial": True,
        },
    )

    settings = config.load(tmp_path, environ={})

    assert settings.api_base_url == "https://portal.example.com"
    assert settings.station_token == "secret"
    assert settings.station_name == "Line 1 / Station 3"
    assert settings.check_interval == "manual"
    assert settings.max_stored_versions == 5
    assert settings.download_timeout == 120.0
    assert settings.recommended_dir == Path("/srv/images")
    assert settings.download_segments == 8
    assert settings.allow_flash_without_serial is True


def test_environment_overrides_the_file(tmp_path):
    write_settings(tmp_path, {"max_stored_versions": 5, "check_interval": "manual"})
    environ = {
        "KIOSK_MAX_STORED_VERSIONS": "2",
        "KIOSK_API_BASE_URL": "http://127.0.0.1:8000",
        "KIOSK_DOWNLOAD_TIMEOUT": "1.5",
        "KIOSK_ALLOW_FLASH_WITHOUT_SERIAL": "yes",
    }

    settings = config.load(tmp_path, environ=environ)

    assert settings.max_stored_versions == 2
    assert settings.api_base_url == "http://127.0.0.1:8000"
    assert settings.download_timeout == 1.5
    assert settings.allow_flash_without_serial is True
    assert settings.check_interval == "manual"


def test_data_dir_comes_from_kiosk_data_dir_then_xdg(tmp_path):
    assert config.data_dir_from_env({"KIOSK_DATA_DIR": str(tmp_path)}) == tmp_path
    assert config.data_dir_from_env({"XDG_DATA_HOME": "/x"}) == Path("/x/flashstation")
    assert config.data_dir_from_env({}).parts[-3:] == (
        ".local",
        "share",
        "flashstation",
    )


def test_token_is_not_shown_in_the_settings_repr(tmp_path):
    settings = config.load(tmp_path, environ={"KIOSK_STATION_TOKEN": "s3cr3t"})

    assert "s3cr3t" not in repr(settings)


def test_settings_are_frozen(tmp_path):
    settings = config.load(tmp_path, environ={})

    with pytest.raises(AttributeError):
        settings.max_stored_versions = 9  # type: ignore[misc]


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"max_stored_version": 3}, "max_stored_version"),
        ({"api_base_url": "portal.example.com"}, "api_base_url"),
        ({"api_base_url": "ftp://portal.example.com"}, "api_base_url"),
        ({"api_base_url": "https://portal.example.com/?x=1"}, "api_base_url"),
        ({"api_base_url": "http://[::1"}, "api_base_url"),
        ({"api_base_url": 8000}, "api_base_url"),
        ({"max_stored_versions": "3"}, "max_stored_versions"),
        ({"max_stored_versions": 2.5}, "max_stored_versions"),
        ({"max_stored_versions": True}, "max_stored_versions"),
        ({"max_stored_versions": 0}, "max_stored_versions"),
        ({"download_timeout": -1}, "download_timeout"),
        ({"download_timeout": float("inf")}, "download_timeout"),
        ({"download_segments": 0}, "download_segments"),
        ({"download_segments": 1000}, "download_segments"),
        ({"check_interval": "hourly"}, "check_interval"),
        ({"allow_flash_without_serial": "false"}, "allow_flash_without_serial"),
        ({"recommended_path": ""}, "recommended_path"),
    ],
)
def test_refuses_a_bad_setting_naming_the_key(tmp_path, values, named):
    write_settings(tmp_path, values)

    with pytest.raises(ConfigError, match=named):
        config.load(tmp_path, environ={})


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("KIOSK_MAX_STORED_VERSIONS", "three"),
        ("KIOSK_MAX_STORED_VERSIONS", "-1"),
        ("KIOSK_DOWNLOAD_TIMEOUT", "0"),
        ("KIOSK_DOWNLOAD_TIMEOUT", "nan"),
        ("KIOSK_DOWNLOAD_SEGMENTS", "2.5"),
        ("KIOSK_ALLOW_FLASH_WITHOUT_SERIAL", "maybe"),
        ("KIOSK_API_BASE_URL", "not a url"),
    ],
)
def test_refuses_a_bad_environment_override(tmp_path, name, text):
    key = name.removeprefix("KIOSK_").lower()

    with pytest.raises(ConfigError, match=key):
        config.load(tmp_path, environ={name: text})


def test_refuses_a_settings_file_that_is_not_json(tmp_path):
    (tmp_path / "settings.json").write_text('{"max_stored_versions": 3,}')

    with pytest.raises(ConfigError, match=r"not valid JSON \(line 1"):
        config.load(tmp_path, environ={})


def test_refuses_a_settings_file_that_is_not_an_object(tmp_path):
    write_settings(tmp_path, ["api_base_url"])

    with pytest.raises(ConfigError, match="one JSON object"):
        config.load(tmp_path, environ={})


def test_says_which_folder_cannot_be_created(tmp_path):
    (tmp_path / "logs").write_text("a file where a folder belongs")
    settings = config.load(tmp_path, environ={})

    with pytest.raises(ConfigError, match="logs"):
        settings.make_dirs()


def test_refuses_a_token_with_spaces_without_echoing_it(tmp_path):
    with pytest.raises(ConfigError, match="station_token") as caught:
        config.load(tmp_path, environ={"KIOSK_STATION_TOKEN": "abc def\n"})

    assert "abc def" not in caught.value.message
