"""Station logging: WARNING and up to logs/app_errors.log (rotating), INFO to stderr."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

__all__ = ["ERROR_LOG", "setup"]

ERROR_LOG = "app_errors.log"
_MAX_BYTES = 5 * 1024 * 1024
_BACKUPS = 5
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MARK = "_kiosk_handler"


def setup(
    logs_dir: Path,
    *,
    console_level: int = logging.INFO,
    max_bytes: int = _MAX_BYTES,
) -> Path:
    """Install the station's log handlers; calling again replaces them."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    path = logs_dir / ERROR_LOG
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
        handler.close()

    errors = logging.handlers.RotatingFileHandler(
        path, maxBytes=max_bytes, backupCount=_BACKUPS, encoding="utf-8"
    )
    errors.setLevel(logging.WARNING)
    console = logging.StreamHandler()
    console.setLevel(console_level)
    for handler in (errors, console):
        handler.setFormatter(logging.Formatter(_FORMAT))
        setattr(handler, _MARK, True)
        root.addHandler(handler)
    root.setLevel(min(console_level, logging.WARNING))

    # httpx logs every request at INFO; the portal client logs its own.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    return path
