"""What the end-to-end tests share: the frozen app, built once per run."""

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 900


@pytest.fixture(scope="session")
def frozen_app(tmp_path_factory) -> Iterator[Path]:
    """dist/flash-kiosk/flash-kiosk, built once per run, removed after."""
    work = tmp_path_factory.mktemp("pyinstaller")
    subprocess.run(
        [
            sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
            "--distpath", str(work / "dist"), "--workpath", str(work / "build"),
            str(REPO / "pyinstaller.spec"),
        ],
        cwd=REPO, check=True, timeout=BUILD_TIMEOUT, capture_output=True,
    )  # fmt: skip
    binary = Path(work / "dist" / "flash-kiosk" / "flash-kiosk")
    assert binary.is_file()
    yield binary
    shutil.rmtree(work, ignore_errors=True)  # about 150 MB
