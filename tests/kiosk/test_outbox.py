"""Flash records reach the portal exactly once, across outages and kills.

The kiosk's outbox talks to the real portal served on 127.0.0.1.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, update

from kiosk.db import open_database
from kiosk.errors import PortalOffline
from kiosk.flashlog import FlashRecord
from kiosk.outbox import Outbox, OutboxSender
from kiosk.portal_client import PortalClient
from portal.flashes.models import FlashRecord as PortalRecord
from portal.local_s3 import free_port

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 12, 1, 8, 0)


def add_records(sessions, count: int, **fields) -> list[str]:
    """`count` finished flashes, as the flash log stores them."""
    rows = [
        {
            "id": str(uuid.uuid4()),
            "station": "Station 3",
            "serial": f"S3K9NX0T{number:06d}",
            "model": "Samsung PSSD T7",
            "slot": "Slot 1",
            "device": "/dev/sdb",
            "image_version": "v1.2.3",
            "image_sha256": "a" * 64,
            "image_size": 1000,
            "readback_sha256": "a" * 64,
            "status": "passed",
            "error": None,
            "bytes_written": 1000,
            "started_at": T0 + timedelta(seconds=number),
            "ended_at": T0 + timedelta(seconds=number + 60),
            **fields,
        }
        for number in range(count)
    ]
    with sessions.begin() as session:
        session.execute(insert(FlashRecord), rows)
    return [row["id"] for row in rows]


@pytest.fixture
def sessions(tmp_path):
    return open_database(tmp_path / "kiosk.sqlite3")


def client(url: str, token: str) -> PortalClient:
    return PortalClient(url, token, retries=1, sleep=lambda _: None)


def test_records_made_offline_arrive_once_when_back_online(
    sessions, live_server, station_token
):
    ids = add_records(sessions, 1000)
    offline = Outbox(sessions, client(f"http://127.0.0.1:{free_port()}", station_token))

    with pytest.raises(PortalOffline):
        offline.send()
    assert offline.pending() == 1000

    online = Outbox(sessions, client(live_server.url, station_token))
    result = online.send()

    assert (result.accepted, result.rejected, result.pending) == (1000, 0, 0)
    assert set(map(str, PortalRecord.objects.values_list("id", flat=True))) == set(ids)


def test_the_same_batch_sent_twice_creates_nothing_twice(
    sessions, live_server, station_token
):
    add_records(sessions, 30)
    outbox = Outbox(sessions, client(live_server.url, station_token), batch_size=7)
    outbox.send()
    with sessions.begin() as session:  # as if every answer had been lost
        session.execute(update(FlashRecord).values(synced_at=None))

    again = outbox.send()

    assert again.accepted == 30
    assert PortalRecord.objects.count() == 30


def test_a_bounded_send_takes_only_its_batches(sessions, live_server, station_token):
    add_records(sessions, 25)
    outbox = Outbox(sessions, client(live_server.url, station_token), batch_size=10)

    first = outbox.send(max_batches=1)
    rest = outbox.send()

    assert (first.accepted, first.pending) == (10, 15)
    assert (rest.accepted, rest.pending) == (15, 0)
    assert PortalRecord.objects.count() == 25


def test_refused_records_keep_the_reason_and_are_not_resent(
    sessions, live_server, station_token
):
    add_records(sessions, 2)
    (bad,) = add_records(sessions, 1, serial="S3K9\x07BELL")
    outbox = Outbox(sessions, client(live_server.url, station_token))

    result = outbox.send()

    assert (result.accepted, result.rejected, result.pending) == (2, 1, 0)
    with sessions() as session:
        refused = session.get(FlashRecord, bad)
    assert refused is not None
    assert "printable" in (refused.sync_error or "")
    assert outbox.send().accepted == 0


KILLED_SYNC = """
import sys
from kiosk.db import open_database
from kiosk.outbox import Outbox, OutboxSender
from kiosk.portal_client import PortalClient

sessions = open_database(__import__("pathlib").Path(sys.argv[1]))
Outbox(sessions, PortalClient(sys.argv[2], sys.argv[3]), batch_size=5).send()
"""


def test_a_sync_killed_midway_resumes_without_duplicates(
    sessions, live_server, station_token, tmp_path
):
    database = tmp_path / "kiosk.sqlite3"
    ids = add_records(sessions, 400)
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            KILLED_SYNC,
            str(database),
            live_server.url,
            station_token,
        ],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    try:
        _wait_for_some_synced(database, child)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    assert 0 < PortalRecord.objects.count() < 400

    Outbox(sessions, client(live_server.url, station_token)).send()

    assert PortalRecord.objects.count() == 400
    assert set(map(str, PortalRecord.objects.values_list("id", flat=True))) == set(ids)


def _wait_for_some_synced(database: Path, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert child.poll() is None, "the sync ended before it could be killed"
        with sqlite3.connect(database) as db:
            query = "SELECT count(*) FROM flash_records WHERE synced_at IS NOT NULL"
            if db.execute(query).fetchone()[0]:
                return
        time.sleep(0.005)
    raise AssertionError("nothing was synced")


def test_sender_sends_after_a_flash_and_reports_being_offline(
    sessions, live_server, station_token
):
    add_records(sessions, 3)
    offline = OutboxSender(
        Outbox(sessions, client(f"http://127.0.0.1:{free_port()}", station_token))
    )
    offline.start()
    try:
        assert _eventually(lambda: offline.last_error != "")
        assert "Portal unreachable" in offline.last_error
    finally:
        offline.stop()

    outbox = Outbox(sessions, client(live_server.url, station_token))
    sender = OutboxSender(outbox, period=3600)
    sender.start()
    try:
        assert _eventually(lambda: outbox.pending() == 0)
        add_records(sessions, 2)
        sender.poke()  # as after a flash; the period alone would wait an hour
        assert _eventually(lambda: outbox.pending() == 0)
    finally:
        sender.stop()
    assert PortalRecord.objects.count() == 5


def _eventually(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
