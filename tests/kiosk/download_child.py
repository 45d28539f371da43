"""One download in a process of its own, for the tests that kill it.

python -m tests.kiosk.download_child URL SIZE SHA256 STAGING_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

from kiosk.downloads import Downloader

NAME = "FlashingApp_v1.2.3.img"


def main(argv: list[str]) -> int:
    url, size, sha256, staging = argv
    downloader = Downloader(
        Path(staging),
        chunk_size=256 * 1024,
        sync_interval=0.02,
        stall_timeout=2.0,
        backoff=0.01,
    )
    downloader.download(NAME, lambda: url, int(size), sha256)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
