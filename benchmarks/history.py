"""QA history at fleet scale: a million flash records in PostgreSQL.

    python scripts/with_postgres.py .venv/bin/python benchmarks/history.py [--records N]

Loads N records (default 1,000,000; `--records 10000000` for ten million)
into the database named by DATABASE_URL (PostgreSQL; `make bench-history`
starts a throw-away one), serves the portal with gunicorn (2 workers) on
127.0.0.1, and measures through the HTTP API, as QA and stations use it:

- query by serial and by time range (p50/p99 of single requests),
- CSV export of a filtered set (rows/s),
- batch ingestion, 500 records a request, several stations at once (records/s).

Targets (printed, not enforced): serial p99 <= 20 ms, export >= 100,000 rows/s,
ingestion >= 5,000 records/s. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

from portal.local_s3 import HOST, free_port  # noqa: E402

T0 = datetime(2025, 1, 1, tzinfo=UTC)
STATIONS = 20
QUERIES = 300
INGEST_BATCHES = 40
BATCH = 500


def setup_django() -> None:
    import django

    django.setup()
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        print(f"note: DATABASE_URL is not PostgreSQL ({engine}); figures differ.")


def prepare(records: int) -> tuple[list[str], list[str]]:
    """Migrate, make stations and a QA user, and bulk-load records with COPY."""
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection

    from portal.flashes.apps import QA
    from portal.flashes.models import FlashRecord
    from portal.stations.models import Station

    call_command("migrate", verbosity=0)
    FlashRecord.objects.all().delete()
    Station.objects.filter(name__startswith="bench-").delete()
    User.objects.filter(username="bench-qa").delete()
    qa = User.objects.create_user("bench-qa", password="bench-qa-pass", is_staff=True)
    qa.groups.add(Group.objects.get(name=QA))
    tokens, station_ids = [], []
    for number in range(STATIONS):
        station = Station(name=f"bench-{number}")
        tokens.append(station.issue_token())
        station.save()
        station_ids.append(station.pk)

    columns = (
        "id, station_id, serial, model, slot, image_version, image_sha256, "
        "readback_sha256, status, error, image_size, bytes_written, started_at, "
        "ended_at, received_at"
    )
    loaded = 0
    started = time.perf_counter()
    with connection.cursor() as cursor:
        copy_sql = f"COPY flashes_flashrecord ({columns}) FROM STDIN"
        with cursor.connection.cursor().copy(copy_sql) as copy:
            for number in range(records):
                moment = T0 + timedelta(seconds=30 * number)
                status = "failed" if number % 50 == 0 else "passed"
                copy.write_row(
                    (
                        uuid.UUID(int=number), station_ids[number % STATIONS],
                        serial_of(number), "Samsung PSSD T7", f"Slot {number % 4 + 1}",
                        "v1.2.3", "a" * 64, "a" * 64, status, "", 25_769_803_776,
                        25_769_803_776, moment, moment + timedelta(minutes=2), moment,
                    )
                )  # fmt: skip
                loaded += 1
                if loaded % 100_000 == 0:
                    print(f"  loaded {loaded:,} records", flush=True)
        cursor.execute("ANALYZE flashes_flashrecord")
    print(f"loaded {records:,} records in {time.perf_counter() - started:.0f} s")
    return tokens, [serial_of(random.randrange(records)) for _ in range(QUERIES)]


def serial_of(number: int) -> str:
    # Every drive is flashed twice on average, so a serial has a short history.
    return f"S3K9NX0T{number // 2:08d}"


def start_portal(port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "gunicorn", "portal.wsgi", "--workers", "2",
        "--bind", f"{HOST}:{port}", "--no-control-socket", "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=REPO, env=os.environ.copy())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://{HOST}:{port}/admin/login/", timeout=2)
            return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the portal did not start")


def qa_client(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=300)
    client.get("/admin/login/")
    client.post(
        "/admin/login/",
        data={
            "username": "bench-qa",
            "password": "bench-qa-pass",
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
        },
        headers={"Referer": f"{base}/admin/login/"},
    )
    return client


def latencies(client: httpx.Client, params: list[dict[str, str]]) -> list[float]:
    timings = []
    for query in params:
        started = time.perf_counter()
        response = client.get("/api/flash-records/", params=query)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text[:300]
    return timings


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=100)[int(share) - 1]


def export_rate(client: httpx.Client, records: int) -> tuple[float, int]:
    until = T0 + timedelta(seconds=30 * records)
    since = until - timedelta(seconds=30 * min(records, 500_000))
    params = {"format": "csv", "since": since.isoformat(), "until": until.isoformat()}
    started = time.perf_counter()
    rows = -1  # the header
    with client.stream("GET", "/api/flash-records/", params=params) as response:
        for chunk in response.iter_bytes(1 << 20):
            rows += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    return rows / seconds, rows


def ingest_rate(base: str, tokens: list[str]) -> float:
    def send(token: str) -> int:
        sent = 0
        with httpx.Client(base_url=base, timeout=120) as client:
            for _ in range(INGEST_BATCHES // len(tokens[:4])):
                now = datetime.now(UTC)
                batch = [new_record(now) for _ in range(BATCH)]
                response = client.post(
                    "/api/flash-records/",
                    json={"records": batch},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert response.status_code == 200, response.text[:300]
                sent += len(batch)
        return sent

    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        total = sum(pool.map(send, tokens[:4]))
    return total / (time.perf_counter() - started)


def new_record(now: datetime) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()), "serial": f"NEW{random.randrange(10**9):09d}",
        "model": "Samsung PSSD T7", "slot": "Slot 1", "image_version": "v1.2.3",
        "image_sha256": "b" * 64, "readback_sha256": "b" * 64, "status": "passed",
        "error": "", "image_size": 1000, "bytes_written": 1000,
        "started_at": (now - timedelta(minutes=2)).isoformat(),
        "ended_at": now.isoformat(),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    setup_django()
    tokens, serials = prepare(args.records)
    port = free_port()
    server = start_portal(port)
    base = f"http://{HOST}:{port}"
    try:
        with closing(qa_client(base)) as client:
            print("querying by serial …", flush=True)
            by_serial = latencies(client, [{"serial": s} for s in serials])
            print("querying by time range …", flush=True)
            ranges = []
            for _ in range(QUERIES):
                start = T0 + timedelta(seconds=30 * random.randrange(args.records))
                end = start + timedelta(hours=8)
                ranges.append({"since": start.isoformat(), "until": end.isoformat()})
            by_range = latencies(client, ranges)
            print("exporting CSV …", flush=True)
            export_rows_per_s, exported = export_rate(client, args.records)
        print("ingesting batches …", flush=True)
        ingest_per_s = ingest_rate(base, tokens)
    finally:
        server.terminate()
        server.wait(timeout=30)

    result = {
        "records": args.records,
        "serial_query_p50_ms": round(percentile(by_serial, 50), 2),
        "serial_query_p99_ms": round(percentile(by_serial, 99), 2),
        "range_query_p50_ms": round(percentile(by_range, 50), 2),
        "range_query_p99_ms": round(percentile(by_range, 99), 2),
        "export_rows": exported,
        "export_rows_per_s": round(export_rows_per_s),
        "ingest_records_per_s": round(ingest_per_s),
    }
    out = io.StringIO()
    out.write(f"serial query  p50 {result['serial_query_p50_ms']} ms, ")
    out.write(f"p99 {result['serial_query_p99_ms']} ms (target <= 20)\n")
    out.write(f"range query   p50 {result['range_query_p50_ms']} ms, ")
    out.write(f"p99 {result['range_query_p99_ms']} ms\n")
    out.write(f"CSV export    {export_rows_per_s:,.0f} rows/s over {exported:,} rows ")
    out.write("(target >= 100,000)\n")
    out.write(f"ingestion     {ingest_per_s:,.0f} records/s (target >= 5,000)")
    print(out.getvalue())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
