"""`python -m kiosk flash` sends its records; `sync` sends whatever still waits.

Records come from real flashes of loop devices (a smartctl stand-in replays a
USB drive's answer) and go to the real portal served on 127.0.0.1.
"""

import functools
from pathlib import Path

import pytest
from sqlalchemy import select

from kiosk import __main__ as cli
from kiosk.db import open_database
from kiosk.flashlog import FlashRecord
from kiosk.library import Library
from kiosk.portal_client import PortalClient
from kiosk.versions import Version
from portal.flashes.models import FlashRecord as PortalRecord
from tests.kiosk import portal_fixtures
from tests.kiosk.drive_fixtures import (
    install_smartctl_stand_in,
    loop_target,
    make_image,
    recording,
)
from tests.kiosk.test_outbox import add_records

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("restore_logging"),
]
refused_url = portal_fixtures.refused_url

SIZE = 4 * 2**20


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A station holding v1.2.3, with no portal until a test names one."""
    data = tmp_path / "station"
    library = Library(data / "recommended", data / "quarantine")
    image, digest = make_image(tmp_path, SIZE)
    library.add(image, Version.parse("v1.2.3"), digest)
    for name in ("KIOSK_API_BASE_URL", "KIOSK_STATION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KIOSK_ALLOW_LOOP_TARGETS", "1")
    monkeypatch.setenv("KIOSK_STATION_NAME", "Station 3")
    install_smartctl_stand_in(
        tmp_path / "smartctl", monkeypatch, output=recording("samsung_t7_asmedia.json")
    )
    return data


@pytest.fixture
def retry_waits(monkeypatch) -> list[float]:
    """The pauses between the portal client's retries, recorded, not slept."""
    waits: list[float] = []
    monkeypatch.setattr(
        cli, "PortalClient", functools.partial(PortalClient, sleep=waits.append)
    )
    return waits


def use_portal(monkeypatch, url: str, token: str) -> None:
    monkeypatch.setenv("KIOSK_API_BASE_URL", url)
    monkeypatch.setenv("KIOSK_STATION_TOKEN", token)


def kiosk(data_dir: Path, *args: str) -> int:
    return cli.main(["--data-dir", str(data_dir), "-q", *args])


def flash(data_dir: Path, *devices: str) -> int:
    return kiosk(data_dir, "flash", "v1.2.3", *devices)


def local_records(data_dir: Path) -> dict[str, bool]:
    """Each flash record on the station and whether the portal has answered it."""
    with open_database(data_dir / "kiosk.sqlite3")() as session:
        return {
            record.id: record.synced_at is not None
            for record in session.scalars(select(FlashRecord))
        }


def portal_ids() -> list[str]:
    return sorted(str(i) for i in PortalRecord.objects.values_list("id", flat=True))


def test_flashed_records_reach_the_portal_exactly_once(
    data_dir, tmp_path, live_server, station_token, monkeypatch, capsys
):
    use_portal(monkeypatch, live_server.url, station_token)

    with loop_target(tmp_path, SIZE) as device:
        first = flash(data_dir, device)
        first_out = capsys.readouterr().out
        second = flash(data_dir, device)
        second_out = capsys.readouterr().out
    synced = kiosk(data_dir, "sync")
    sync_out = capsys.readouterr().out

    assert (first, second, synced) == (0, 0, 0)
    assert first_out.splitlines()[-1] == "1 flash record sent; 0 waiting."
    assert second_out.splitlines()[-1] == "1 flash record sent; 0 waiting."
    assert sync_out == "0 flash records sent; 0 waiting.\n"
    records = local_records(data_dir)
    assert len(records) == 2
    assert all(records.values())
    assert portal_ids() == sorted(records)
    assert set(PortalRecord.objects.values_list("serial", "status")) == {
        ("S6WBNS0T812345A", "passed")
    }


def test_records_wait_while_the_portal_is_down_and_go_once_it_is_up(
    data_dir,
    tmp_path,
    live_server,
    station_token,
    refused_url,
    retry_waits,
    monkeypatch,
    capsys,
):
    use_portal(monkeypatch, refused_url, station_token)
    not_a_disk = tmp_path / "not-a-disk.img"
    not_a_disk.write_bytes(b"")

    with loop_target(tmp_path, SIZE) as device:
        flashed = flash(data_dir, device, str(not_a_disk))
    flash_out = capsys.readouterr().out
    down = kiosk(data_dir, "sync")
    down_out, down_err = capsys.readouterr()

    assert flashed == 1, flash_out  # the file failed; the send does not change it
    assert flash_out.splitlines()[-1] == (
        "The portal cannot be reached (connection refused or no route); "
        "2 flash records wait for the next `sync`."
    )
    assert down == 3  # portal unreachable, as for check and download
    assert down_out == "0 flash records sent; 2 waiting.\n"
    assert down_err.splitlines()[-1] == (
        "The portal cannot be reached (connection refused or no route), so the "
        "flash records stay in the outbox; check the network or api_base_url, "
        "then run `sync` again."
    )
    assert "Traceback" not in down_err
    assert len(retry_waits) == 4  # the sync retried; the flash tried once
    assert list(local_records(data_dir).values()) == [False, False]
    assert portal_ids() == []

    use_portal(monkeypatch, live_server.url, station_token)
    up = kiosk(data_dir, "sync")
    up_out = capsys.readouterr().out
    again = kiosk(data_dir, "sync")
    again_out = capsys.readouterr().out

    assert (up, again) == (0, 0)
    assert up_out == "2 flash records sent; 0 waiting.\n"
    assert again_out == "0 flash records sent; 0 waiting.\n"
    records = local_records(data_dir)
    assert all(records.values())
    assert portal_ids() == sorted(records)
    assert sorted(PortalRecord.objects.values_list("status", flat=True)) == [
        "failed",
        "passed",
    ]


def test_sync_sends_a_backlog_larger_than_a_batch(
    data_dir, live_server, station_token, monkeypatch, capsys
):
    ids = add_records(open_database(data_dir / "kiosk.sqlite3"), 450)
    use_portal(monkeypatch, live_server.url, station_token)

    synced = kiosk(data_dir, "sync")

    assert synced == 0
    assert capsys.readouterr().out == "450 flash records sent; 0 waiting.\n"
    assert portal_ids() == sorted(ids)


def test_records_refused_with_the_station_token_stay_unsent(
    data_dir, tmp_path, live_server, station_token, monkeypatch, capsys
):
    use_portal(monkeypatch, live_server.url, "revoked")

    with loop_target(tmp_path, SIZE) as device:
        flashed = flash(data_dir, device)
    flash_out = capsys.readouterr().out
    refused = kiosk(data_dir, "sync")
    refused_out, refused_err = capsys.readouterr()

    assert flashed == 0, flash_out
    assert flash_out.splitlines()[-1] == (
        "The portal refused this station's token; ask an administrator for a new "
        "token and set station_token. 1 flash record waits for the next `sync`."
    )
    assert refused == 1
    assert refused_out == "0 flash records sent; 1 waiting.\n"
    assert refused_err.splitlines()[-1] == (
        "The portal refused this station's token; ask an administrator for a new "
        "token and set station_token."
    )
    assert list(local_records(data_dir).values()) == [False]
    assert portal_ids() == []

    use_portal(monkeypatch, live_server.url, station_token)
    assert kiosk(data_dir, "sync") == 0
    assert portal_ids() == sorted(local_records(data_dir))


def test_without_a_portal_flash_keeps_quiet_and_sync_exits_2(
    data_dir, tmp_path, capsys
):
    with loop_target(tmp_path, SIZE) as device:
        flashed = flash(data_dir, device)
    flash_out = capsys.readouterr().out
    synced = kiosk(data_dir, "sync")
    sync_out, sync_err = capsys.readouterr()

    assert flashed == 0, flash_out
    (line,) = flash_out.splitlines()  # nothing about sending
    assert line.startswith(f"PASS  {device} serial S6WBNS0T812345A")
    assert synced == 2
    assert sync_out == ""
    assert sync_err.startswith("No portal is set up; set api_base_url")
    assert "Traceback" not in sync_err
    assert list(local_records(data_dir).values()) == [False]
