"""Flash log export: a million records to CSV and JSON, against the sqlite3 CLI.

    python benchmarks/flashlog_export.py [--records 1000000]

Prints rows/s of the kiosk's streaming export and of `sqlite3 -csv` on the same
database, and the ratio; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from kiosk.db import open_database
from kiosk.flashlog import FlashLog, FlashRecord, Status


def fill(sessions: sessionmaker[Session], count: int) -> None:
    start = datetime(2026, 1, 1)
    batch = 50_000
    with sessions.begin() as session:
        for offset in range(0, count, batch):
            rows = [
                {
                    "id": str(uuid.UUID(int=offset + i)),
                    "station": "Station 3",
                    "serial": f"S3K9NX0T{offset + i:08d}",
                    "model": "Samsung PSSD T7",
                    "slot": f"Slot {i % 4 + 1}",
                    "device": "/dev/sdb",
                    "image_version": "v1.2.3",
                    "image_sha256": "ab" * 32,
                    "image_size": 25_769_803_776,
                    "readback_sha256": "ab" * 32,
                    "status": Status.PASSED,
                    "error": None,
                    "bytes_written": 25_769_803_776,
                    "started_at": start + timedelta(seconds=offset + i),
                    "ended_at": start + timedelta(seconds=offset + i + 90),
                }
                for i in range(min(batch, count - offset))
            ]
            session.execute(insert(FlashRecord), rows)
            print(f"\rloading {offset + len(rows):,} / {count:,}", end="", flush=True)
    print()


def timed_export(flash_log: FlashLog, path: Path, fmt: str) -> tuple[float, int]:
    started = time.perf_counter()
    with path.open("w", newline="") as out:
        count = flash_log.export(out, fmt)  # type: ignore[arg-type]
    return time.perf_counter() - started, count


def timed_sqlite_cli(database: Path, path: Path) -> float:
    started = time.perf_counter()
    with path.open("w") as out:
        subprocess.run(
            ["sqlite3", "-csv", "-header", str(database),
             "SELECT * FROM flash_records ORDER BY started_at"],
            stdout=out, check=True, timeout=600,
        )  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="flashlog-bench-"))
    try:
        database = workdir / "kiosk.sqlite3"
        sessions = open_database(database)
        fill(sessions, args.records)
        flash_log = FlashLog(sessions, "Station 3")

        csv_s, count = timed_export(flash_log, workdir / "out.csv", "csv")
        json_s, _ = timed_export(flash_log, workdir / "out.json", "json")
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"kiosk CSV export:  {count / csv_s:,.0f} rows/s ({csv_s:.1f} s)")
        print(f"kiosk JSON export: {count / json_s:,.0f} rows/s ({json_s:.1f} s)")
        result: dict[str, float] = {
            "records": count,
            "csv_rows_per_s": round(count / csv_s),
            "json_rows_per_s": round(count / json_s),
            "peak_rss_mb": round(peak_mb),
        }
        if shutil.which("sqlite3"):
            cli_s = timed_sqlite_cli(database, workdir / "cli.csv")
            print(f"sqlite3 -csv:      {count / cli_s:,.0f} rows/s ({cli_s:.1f} s)")
            result["csv_vs_sqlite3_cli"] = round(cli_s / csv_s, 2)
        print(json.dumps(result))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
