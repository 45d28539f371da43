"""Download speed of the kiosk's Downloader against curl and aria2c.

One random image is stored in a private SeaweedFS and fetched through the same
presigned URL, in rounds of A B C: `curl -o` (no verification), `aria2c -x4
--checksum=sha-256=…` and the kiosk's Downloader (verifies). Each runs as a
child process, so wall time, CPU seconds and peak RSS are measured alike.

    python benchmarks/download.py [--size 2GiB] [--rounds 3] [--segments 4]
                                  [--chunk 32MiB]

Set BENCH_LOG=INFO to see the Downloader's own log lines.

The last line printed is one JSON object with the ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

    from portal.local_s3 import LocalS3

MiB = 1 << 20
PART = 64 * MiB
RUN_TIMEOUT = 900.0
IMAGE = "FlashingApp_v9.9.9.img"
TARGETS = {"vs_curl": 1.0, "vs_aria2c_checksum": 2.0, "peak_rss_mb": 150.0}


@dataclass
class Run:
    tool: str
    seconds: float
    cpu: float
    peak_rss_mb: float
    size: int

    @property
    def mb_per_s(self) -> float:
        return self.size / self.seconds / 1e6


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+)\s*(B|KiB|MiB|GiB)?", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 2GiB)")
    unit = {"B": 1, None: 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
    return int(match[1]) * unit[match[2]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("2GiB"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--chunk", type=parse_size, default=None, help="e.g. 8MiB")
    parser.add_argument("--child", nargs=4, metavar=("URL", "SIZE", "SHA", "DIR"))
    args = parser.parse_args(argv)
    if args.child:
        url, size, sha256, folder = args.child
        return kiosk_child(url, size, sha256, folder, args.segments, args.chunk)
    missing = [tool for tool in ("curl", "aria2c") if shutil.which(tool) is None]
    if missing:
        print(f"missing {', '.join(missing)}: apt-get install -y curl aria2")
        return 2
    kiosk_options = ["--segments", str(args.segments)]
    if args.chunk:
        kiosk_options += ["--chunk", str(args.chunk)]
    return compare(args.size, args.rounds, kiosk_options)


def kiosk_child(
    url: str, size: str, sha256: str, folder: str, segments: int, chunk: int | None
) -> int:
    """The measured side of the kiosk: one verified download, then exit."""
    from kiosk.downloads import CHUNK_SIZE, Downloader

    downloader = Downloader(
        Path(folder), segments=segments, chunk_size=chunk or CHUNK_SIZE
    )
    logging.basicConfig(level=os.environ.get("BENCH_LOG", "WARNING"))
    downloader.download(IMAGE, lambda: url, int(size), sha256)
    return 0


def compare(size: int, rounds: int, kiosk_options: list[str]) -> int:
    from portal.local_s3 import LocalS3

    work = Path(tempfile.mkdtemp(prefix="bench-download-"))
    try:
        with LocalS3(work / "s3") as store:
            print(f"storing {size / MiB:.0f} MiB of random bytes in SeaweedFS …")
            url, sha256 = store_image(store, size)
            runs = measure(url, sha256, size, rounds, kiosk_options, work / "out")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(runs, size)
    return 0


def store_image(store: LocalS3, size: int) -> tuple[str, str]:
    """Upload random parts straight from memory; no copy stays on disk."""
    client = store.client()
    client.create_bucket(Bucket="bench")
    upload = client.create_multipart_upload(Bucket="bench", Key=IMAGE)
    digest = hashlib.sha256()
    parts: list[CompletedPartTypeDef] = []
    for number, offset in enumerate(range(0, size, PART), start=1):
        data = os.urandom(min(PART, size - offset))
        digest.update(data)
        answer = client.upload_part(
            Bucket="bench",
            Key=IMAGE,
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=data,
        )
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    client.complete_multipart_upload(
        Bucket="bench",
        Key=IMAGE,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": "bench", "Key": IMAGE}, ExpiresIn=7200
    )
    return url, digest.hexdigest()


def commands(
    url: str, sha256: str, size: int, kiosk_options: list[str], out: Path
) -> dict[str, list[str]]:
    return {
        "curl": [
            "curl",
            "--silent",
            "--show-error",
            "--fail",
            "-o",
            str(out / IMAGE),
            url,
        ],
        "aria2c": [
            "aria2c",
            "-x4",
            "-s4",
            f"--checksum=sha-256={sha256}",
            "--file-allocation=falloc",
            "--allow-overwrite=true",
            "--auto-file-renaming=false",
            "--console-log-level=error",
            "--summary-interval=0",
            "--download-result=hide",
            "-d",
            str(out),
            "-o",
            IMAGE,
            url,
        ],
        "kiosk": [
            sys.executable,
            str(Path(__file__).resolve()),
            *kiosk_options,
            "--child",
            url,
            str(size),
            sha256,
            str(out),
        ],
    }


def measure(
    url: str, sha256: str, size: int, rounds: int, kiosk_options: list[str], out: Path
) -> list[Run]:
    runs = []
    for round_number in range(1, rounds + 1):
        for tool, argv in commands(url, sha256, size, kiosk_options, out).items():
            out.mkdir(parents=True, exist_ok=True)
            try:
                run = run_child(tool, argv, size)
                landed = (out / IMAGE).stat().st_size
                if landed != size:
                    raise RuntimeError(f"{tool} wrote {landed} of {size} bytes")
            finally:
                shutil.rmtree(out, ignore_errors=True)
            runs.append(run)
            print(
                f"round {round_number} {tool:7} {run.mb_per_s:8.0f} MB/s "
                f"{run.cpu:6.2f} s CPU {run.peak_rss_mb:6.1f} MB peak RSS",
                flush=True,
            )
    return runs


def run_child(tool: str, argv: list[str], size: int) -> Run:
    """Run one download; wall time, CPU time and peak RSS of that child alone."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    peak = PeakRss(process.pid)
    killer = threading.Timer(RUN_TIMEOUT, process.kill)
    killer.start()
    try:
        # wait4 reports the CPU time of this one child, not of all children.
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        killer.cancel()
        peak.stop()
        if process.returncode is None and process.poll() is None:
            process.kill()
            process.wait(10)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{tool} failed with exit status {process.returncode}")
    return Run(
        tool=tool,
        seconds=seconds,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=peak.mb,
        size=size,
    )


class PeakRss:
    """The child's VmHWM, sampled until it exits.

    ru_maxrss of a child starts at the RSS of the parent it was forked from
    (this script holds boto3 and upload buffers), so it cannot tell a small
    child from a large one; VmHWM belongs to the child's own address space.
    """

    def __init__(self, pid: int) -> None:
        self.mb = 0.0
        self._status = Path(f"/proc/{pid}/status")
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.01):
            try:
                text = self._status.read_text()
            except OSError:
                return
            for line in text.splitlines():
                if line.startswith("VmHWM:"):
                    self.mb = max(self.mb, int(line.split()[1]) / 1024)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def report(runs: list[Run], size: int) -> None:
    def median(tool: str, attribute: str) -> float:
        values = [float(getattr(r, attribute)) for r in runs if r.tool == tool]
        return statistics.median(values)

    tools = ("curl", "aria2c", "kiosk")
    print(f"\nmedians over {len(runs) // 3} rounds, {size / MiB:.0f} MiB")
    print(f"{'tool':8} {'MB/s':>8} {'CPU s':>7} {'peak RSS MB':>12}")
    for tool in tools:
        print(
            f"{tool:8} {median(tool, 'mb_per_s'):8.0f} {median(tool, 'cpu'):7.2f} "
            f"{max(r.peak_rss_mb for r in runs if r.tool == tool):12.1f}"
        )
    speed = {tool: median(tool, "mb_per_s") for tool in tools}
    vs_curl = round(speed["kiosk"] / speed["curl"], 2)
    vs_aria2c = round(speed["kiosk"] / speed["aria2c"], 2)
    rss = round(max(r.peak_rss_mb for r in runs if r.tool == "kiosk"), 1)
    result = {
        "size_bytes": size,
        "kiosk_vs_curl": vs_curl,
        "kiosk_vs_aria2c_checksum": vs_aria2c,
        "kiosk_peak_rss_mb": rss,
        "mb_per_s": {tool: round(value) for tool, value in speed.items()},
        "cpu_seconds": {tool: round(median(tool, "cpu"), 2) for tool in tools},
        "peak_rss_mb": {
            tool: round(max(r.peak_rss_mb for r in runs if r.tool == tool), 1)
            for tool in tools
        },
    }
    verdicts = [
        ("kiosk >= 1.0x curl", vs_curl >= TARGETS["vs_curl"]),
        (
            "kiosk >= 2x aria2c with checksum",
            vs_aria2c >= TARGETS["vs_aria2c_checksum"],
        ),
        ("peak RSS <= 150 MB", rss <= TARGETS["peak_rss_mb"]),
    ]
    for target, met in verdicts:
        print(f"target {target}: {'met' if met else 'NOT met'}")
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
