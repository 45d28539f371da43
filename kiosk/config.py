"""The station's settings: a JSON file in the data directory, then env overrides.

The data directory is `$KIOSK_DATA_DIR`, else `$XDG_DATA_HOME/flashstation`,
else `~/.local/share/flashstation`. It holds `settings.json` and everything the
station keeps:

    settings.json            the settings below; every key is optional
    recommended/             verified images (`recommended_path` may move it)
    quarantine/              images that failed a re-verification
    temp/download_staging/   partial downloads and their resume state
    logs/                    app_errors.log (rotating)
    kiosk.sqlite3            flash records, download state

Each key can be overridden by an environment variable `KIOSK_<KEY>`, e.g.
`KIOSK_API_BASE_URL` or `KIOSK_MAX_STORED_VERSIONS=5`. A wrong value is a
ConfigError naming the key at start, never a silent default.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from kiosk.errors import ConfigError

__all__ = ["CHECK_INTERVALS", "Settings", "data_dir_from_env", "load"]

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"
CHECK_INTERVALS = ("startup_only", "manual")
CheckInterval = Literal["startup_only", "manual"]

# The type each key must have; `float` also accepts whole numbers.
_TYPES: dict[str, type] = {
    "api_base_url": str,
    "station_token": str,
    "station_name": str,
    "check_interval": str,
    "max_stored_versions": int,
    "download_timeout": float,
    "recommended_path": str,
    "download_segments": int,
    "allow_flash_without_serial": bool,
    "allow_loop_targets": bool,
}
_MAX_SEGMENTS = 32
# It goes into an HTTP header, where spaces or line breaks would corrupt it.
_TOKEN = re.compile(r"[!-~]*")


@dataclass(frozen=True)
class Settings:
    """Validated settings and the paths derived from the data directory."""

    data_dir: Path
    api_base_url: str = ""
    station_token: str = field(default="", repr=False)
    station_name: str = ""
    check_interval: CheckInterval = "startup_only"
    max_stored_versions: int = 3
    download_timeout: float = 3600.0
    recommended_path: str = "./recommended/"
    download_segments: int = 4
    allow_flash_without_serial: bool = False
    # Loop devices stand in for USB drives in the demo and the tests only.
    allow_loop_targets: bool = False

    @property
    def settings_file(self) -> Path:
        return self.data_dir / SETTINGS_FILE

    @property
    def recommended_dir(self) -> Path:
        return self.data_dir / Path(self.recommended_path)

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def staging_dir(self) -> Path:
        return self.data_dir / "temp" / "download_staging"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "kiosk.sqlite3"

    @property
    def portal_configured(self) -> bool:
        return bool(self.api_base_url)

    def make_dirs(self) -> None:
        """Create the station's folders; a folder that cannot be made is fatal."""
        for folder in (
            self.recommended_dir,
            self.quarantine_dir,
            self.staging_dir,
            self.logs_dir,
        ):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                log.error("cannot create %s: %s", folder, exc)
                raise ConfigError(
                    f"Cannot create the folder {folder} ({exc.strerror}); "
                    "check the data directory and its permissions."
                ) from exc


def data_dir_from_env(environ: Mapping[str, str] | None = None) -> Path:
    """The data directory chosen by KIOSK_DATA_DIR, XDG_DATA_HOME or the default."""
    env = os.environ if environ is None else environ
    if env.get("KIOSK_DATA_DIR"):
        return Path(env["KIOSK_DATA_DIR"]).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "flashstation"


def load(
    data_dir: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read settings.json (if any) from the data directory, then env overrides."""
    env = os.environ if environ is None else environ
    folder = data_dir if data_dir is not None else data_dir_from_env(env)
    values = _read_file(folder / SETTINGS_FILE)
    for key in _TYPES:
        text = env.get(f"KIOSK_{key.upper()}")
        if text is not None:
            values[key] = _from_env(key, text)
    for key, value in values.items():
        _check(key, value)
    if "download_timeout" in values:
        values["download_timeout"] = float(values["download_timeout"])
    return Settings(data_dir=folder.absolute(), **values)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        log.error("cannot read %s: %s", path, exc)
        raise ConfigError(
            f"Cannot read the settings file {path}; check that it is a UTF-8 "
            "text file the station may read."
        ) from exc
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"The settings file {path} is not valid JSON (line {exc.lineno}, "
            f"column {exc.colno}: {exc.msg}); fix or remove it."
        ) from exc
    if not isinstance(values, dict):
        raise ConfigError(
            f"The settings file {path} must hold one JSON object of settings."
        )
    unknown = sorted(set(values) - set(_TYPES))
    if unknown:
        raise ConfigError(
            f"Unknown setting {unknown[0]!r} in {path}; remove it or check its "
            f"spelling (known settings: {', '.join(_TYPES)})."
        )
    return values


def _from_env(key: str, text: str) -> object:
    """Convert an env override to the key's type; unparsable text fails _check."""
    wanted = _TYPES[key]
    if wanted is bool:
        truth = {"1": True, "true": True, "yes": True}
        truth |= {"0": False, "false": False, "no": False}
        return truth.get(text.strip().lower(), text)
    if wanted is int or wanted is float:
        try:
            return wanted(text)
        except ValueError:
            return text
    return text


def _check(key: str, value: object) -> None:
    wanted = _TYPES[key]
    ok = type(value) is wanted or (wanted is float and type(value) is int)
    if not ok:
        names = {str: "text", int: "whole number", float: "number", bool: "true/false"}
        raise ConfigError(
            f"Setting {key} must be a {names[wanted]}, not {value!r}; "
            "fix it in settings.json or in the environment."
        )
    _check_value(key, value)


def _check_value(key: str, value: object) -> None:
    problem = ""
    if key == "api_base_url":
        problem = _url_problem(cast(str, value))
    elif key == "check_interval" and value not in CHECK_INTERVALS:
        problem = f"must be one of {', '.join(CHECK_INTERVALS)}"
    elif key in ("max_stored_versions", "download_timeout", "download_segments"):
        if not math.isfinite(cast(float, value)) or cast(float, value) <= 0:
            problem = "must be a finite number greater than zero"
        elif key == "download_segments" and cast(int, value) > _MAX_SEGMENTS:
            problem = f"must be at most {_MAX_SEGMENTS}"
    elif key == "recommended_path" and not cast(str, value).strip():
        problem = "must name a folder"
    elif key == "station_token" and not _TOKEN.fullmatch(cast(str, value)):
        problem = "must be the token as issued: printable characters, no spaces"
    if problem:
        shown = "" if key == "station_token" else f" (got {value!r})"
        raise ConfigError(
            f"Setting {key} {problem}{shown}; "
            "fix it in settings.json or in the environment."
        )


def _url_problem(url: str) -> str:
    if not url:
        return ""  # no portal: the station works with its local images only
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
    if host is None or parts.scheme not in ("http", "https"):
        return "must be an address such as https://portal.example.com"
    if parts.query or parts.fragment or any(c.isspace() for c in url):
        return "must be a plain address without query, fragment or spaces"
    return ""
