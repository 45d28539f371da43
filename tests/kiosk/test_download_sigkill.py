"""A download killed with SIGKILL at any moment continues and ends verified."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.kiosk.conftest import DOWNLOAD_IMAGE, DOWNLOAD_SHA256
from tests.kiosk.download_child import NAME
from tests.kiosk.faulty_server import FaultyServer

ROOT = Path(__file__).resolve().parents[2]
SIZE = len(DOWNLOAD_IMAGE)
RATE = 512 * 1024  # per connection: the whole image takes about 1.5 s


@dataclass
class Tally:
    kills: int = 0
    resumed: int = 0  # kills after which a later run had bytes to skip
    completed: int = 0


def start_child(url: str, staging: Path) -> subprocess.Popen[bytes]:
    arguments = [url, str(SIZE), DOWNLOAD_SHA256, str(staging)]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.kiosk.download_child", *arguments],
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )


def claimed_bytes_are_right(staging: Path) -> int:
    """Every byte the resume state claims is the image's; returns their count."""
    state_file = staging / f"{NAME}.resume.json"
    if not state_file.exists():
        return 0
    state = json.loads(state_file.read_text())
    data = (staging / f"{NAME}.part").read_bytes()
    chunk = state["chunk_size"]
    for index, written in enumerate(state["written"]):
        start = index * chunk
        assert data[start : start + written] == DOWNLOAD_IMAGE[start : start + written]
    return int(sum(state["written"]))


def kill_trials(server: FaultyServer, staging: Path, kills: int, seed: int) -> Tally:
    rng = random.Random(seed)
    tally = Tally()
    server.plan.rate = RATE
    url = server.url()
    while tally.kills < kills:
        child = start_child(url, staging)
        try:
            child.wait(rng.uniform(0.05, 1.2))
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
            tally.kills += 1
        else:
            assert child.returncode == 0, child.stderr and child.stderr.read()
            tally.completed += 1
            (staging / NAME).unlink()
        finally:
            if child.stderr:
                child.stderr.close()
        if claimed_bytes_are_right(staging):
            tally.resumed += 1
        complete = staging / NAME
        assert not complete.exists() or complete.read_bytes() == DOWNLOAD_IMAGE
    return tally


def finish(url: str, staging: Path) -> None:
    child = start_child(url, staging)
    _, errors = child.communicate(timeout=60)
    assert child.returncode == 0, errors.decode()
    assert (staging / NAME).read_bytes() == DOWNLOAD_IMAGE
    assert sorted(p.name for p in staging.iterdir()) == [NAME]


def test_survives_sigkill_at_random_moments(
    faulty_server: FaultyServer, download_staging: Path
):
    started = time.monotonic()
    tally = kill_trials(faulty_server, download_staging, kills=20, seed=20261203)

    finish(faulty_server.url(), download_staging)

    assert tally.kills == 20
    assert tally.resumed >= 5  # most kills land after a checkpoint
    assert time.monotonic() - started < 60


@pytest.mark.slow
def test_survives_hundreds_of_sigkills(
    faulty_server: FaultyServer, download_staging: Path
):
    tally = kill_trials(faulty_server, download_staging, kills=300, seed=7)

    finish(faulty_server.url(), download_staging)

    assert tally.completed >= 1
