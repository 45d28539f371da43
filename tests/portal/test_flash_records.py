"""Stations send flash records in batches; QA reads the fleet's history."""

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from portal.flashes.models import FlashRecord
from portal.stations.models import Station

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/flash-records/"
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def record(serial="S3K9NX0T123456", status="passed", minutes=0, **fields):
    started = T0 + timedelta(minutes=minutes)
    return {
        "id": str(uuid.uuid4()),
        "serial": serial,
        "model": "Samsung PSSD T7",
        "slot": "Slot 3",
        "image_version": "v1.2.3",
        "image_sha256": "a" * 64,
        "readback_sha256": "a" * 64 if status == "passed" else "",
        "status": status,
        "error": "",
        "image_size": 1000,
        "bytes_written": 1000,
        "started_at": started.isoformat(),
        "ended_at": None
        if status == "in_progress"
        else (started + timedelta(minutes=2)).isoformat(),
        **fields,
    }


def send(api, *records):
    response = api.post(URL, json={"records": list(records)})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def test_resent_batch_creates_nothing_twice(api):
    batch = [record(minutes=i) for i in range(3)]

    first = send(api, *batch)
    second = send(api, *batch)

    assert [r["outcome"] for r in first] == ["created"] * 3
    assert [r["outcome"] for r in second] == ["unchanged"] * 3
    assert FlashRecord.objects.count() == 3


def test_record_moves_to_a_final_status_and_never_back(api):
    started = record(status="in_progress")
    finished = {
        **started,
        "status": "failed",
        "error": "I/O error",
        "ended_at": T0.isoformat(),
    }

    send(api, started)
    assert send(api, finished)[0]["outcome"] == "updated"
    assert send(api, started)[0]["outcome"] == "unchanged"

    stored = FlashRecord.objects.get()
    assert (stored.status, stored.error) == ("failed", "I/O error")


def test_one_bad_record_is_rejected_alone(api):
    good, control, future = (
        record(),
        record(serial="S3K9\x07BELL"),
        record(started_at=(datetime.now(UTC) + timedelta(days=30)).isoformat()),
    )

    results = send(api, good, control, future, ["not", "a", "record"])

    assert [r["accepted"] for r in results] == [True, False, False, False]
    assert results[1]["code"] == "invalid_serial"
    assert results[2]["code"] == "timestamp_in_future"
    assert results[3]["code"] == "invalid"
    assert list(FlashRecord.objects.values_list("id", flat=True)) == [
        uuid.UUID(good["id"])
    ]


def test_a_station_cannot_write_another_stations_record(api, live_server):
    other = Station(name="Other station")
    token = other.issue_token()
    other.save()
    mine = record()
    send(api, mine)

    with httpx.Client(
        base_url=live_server.url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        results = send(client, {**mine, "status": "failed"})

    assert results[0]["code"] == "not_your_record"
    assert FlashRecord.objects.get().status == "passed"


def test_oversized_and_empty_batches_are_refused(api):
    too_many = api.post(URL, json={"records": [record() for _ in range(501)]})
    empty = api.post(URL, json={"records": []})

    assert too_many.status_code == 413
    assert too_many.json()["code"] == "batch_too_large"
    assert empty.status_code == 400
    assert not FlashRecord.objects.exists()


def test_qa_filters_history_newest_first_with_cursor_pages(api, qa):
    send(api, *[record(serial=f"SER{i % 2}", minutes=i) for i in range(5)])

    page = qa.get(URL, params={"serial": "SER0", "page_size": 2}).json()
    rest = qa.get(page["next"]).json()

    serials_and_times = [
        (r["serial"], r["started_at"]) for r in page["results"] + rest["results"]
    ]
    assert [s for s, _ in serials_and_times] == ["SER0"] * 3
    assert [t for _, t in serials_and_times] == sorted(
        (t for _, t in serials_and_times), reverse=True
    )
    assert rest["next"] is None


def test_qa_filters_by_status_station_version_and_time(api, qa):
    send(
        api, record(minutes=0), record(status="failed", minutes=10), record(minutes=20)
    )

    def count(**params):
        return len(qa.get(URL, params=params).json()["results"])

    assert count(status="failed") == 1
    assert count(station="Line 1 / Station 3") == 3
    assert count(version="v9.9.9") == 0
    assert count(since=(T0 + timedelta(minutes=5)).isoformat()) == 2
    assert count(until=(T0 + timedelta(minutes=5)).isoformat()) == 1
    bad = qa.get(URL, params={"since": "yesterday"})
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_filter"


def test_qa_reads_one_record_and_one_drives_history(api, qa):
    first, second = (
        record(serial="S3K9NX0T123456"),
        record(serial="S3K9NX0T123456", minutes=5),
    )
    send(api, first, second, record(serial="OTHER"))

    one = qa.get(f"{URL}{first['id']}").json()
    drive = qa.get("/api/serials/S3K9NX0T123456/flash-records").json()

    assert one["station"] == "Line 1 / Station 3"
    assert [r["id"] for r in drive["results"]] == [second["id"], first["id"]]


def test_csv_streams_the_whole_filtered_set(api, qa):
    send(api, *[record(minutes=i) for i in range(7)], record(serial="OTHER"))

    response = qa.get(URL, params={"format": "csv", "serial": "S3K9NX0T123456"})

    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert response.headers["content-type"].startswith("text/csv")
    assert len(rows) == 7
    assert {row["serial"] for row in rows} == {"S3K9NX0T123456"}
    assert rows[0]["started_at"] == "2026-12-01T08:06:00Z"  # newest first, UTC
    assert rows[0]["station"] == "Line 1 / Station 3"


def test_stations_cannot_read_history_and_qa_cannot_write(api, qa, live_server):
    assert api.get(URL).status_code == 403
    response = qa.post(
        URL,
        json={"records": [record()]},
        headers={"X-CSRFToken": qa.cookies["csrftoken"], "Referer": live_server.url},
    )
    assert response.status_code == 403
    with httpx.Client(base_url=live_server.url) as anonymous:
        assert anonymous.get(URL).status_code == 401


def test_latest_check_records_what_the_station_runs_and_holds(
    api, station, make_release
):
    make_release("v1.2.3")

    api.get(
        "/api/flash-images/latest",
        headers={
            "X-Station-App-Version": "0.1.0",
            "X-Station-Images": "v1.2.3, v1.10.0,../x",
        },
    )

    station.refresh_from_db()
    assert station.app_version == "0.1.0"
    assert station.images_held == ["v1.2.3", "v1.10.0"]
