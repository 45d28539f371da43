"""The kiosk's flash and verify against dd plus openssl, and three drives at once.

In one run, on targets that are loop devices over files (as root; plain files
otherwise, with a note):

- dd+openssl: `dd if=IMAGE of=TARGET bs=4M oflag=direct conv=fsync`, the page
  cache dropped, then `dd if=TARGET iflag=direct | openssl dgst -sha256` of
  the written range.
- kiosk: `Flasher.flash` of the same image onto the same target: write,
  fsync, read back without the cache, compare with the image's checksum.
- parallel3: three targets flashed at once by `Flasher.start`, against the
  single kiosk run; dd+openssl on three targets at once shows what the disk
  itself allows for comparison.

Three USB drives do not share a disk, but three loop devices over files in one
folder do. `--target-dir /dev/shm` puts the targets' backing files in memory,
so that the figure shows what the code allows rather than what the disk does.

The page cache is dropped before each contender, so each reads the image
from disk. Targets are printed, not enforced: kiosk ≤ 1.0 times the time of
dd+openssl; three at once ≥ 0.9 of three times the single throughput. The last
line is one JSON object.

    .venv/bin/python benchmarks/flash.py [--size 2GiB] [--dir /var/tmp]
        [--target-dir DIR] [--rounds 1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kiosk.flashing import Flasher, FlashResult  # noqa: E402

MB = 1e6
KIOSK_RATIO_TARGET = 1.0
PARALLEL_TARGET = 0.9
TIMEOUT = 1800
_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3}
_IUNITS = {"ki": 1024, "mi": 1024**2, "gi": 1024**3}


def parse_size(text: str) -> int:
    """`2GiB`, `512MiB`, `1G` or a number of bytes."""
    match = re.fullmatch(r"\s*(\d+)\s*([kmg]i?)?b?\s*", text.lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    number, unit = int(match[1]), match[2] or ""
    return number * (_IUNITS.get(unit) or _UNITS[unit])


def drop_caches() -> bool:
    """Flush dirty pages and drop the page cache (root only)."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as control:
            control.write("3\n")
    except OSError:
        return False
    return True


def make_image(path: Path, size: int) -> str:
    """Random bytes; returns their SHA-256."""
    digest = hashlib.sha256()
    block = 16 * 1024 * 1024
    with open(path, "wb") as stream:
        left = size
        while left:
            data = os.urandom(min(block, left))
            stream.write(data)
            digest.update(data)
            left -= len(data)
    return digest.hexdigest()


@contextmanager
def target(folder: Path, name: str, size: int, use_loop: bool) -> Iterator[str]:
    """A loop device over a sparse file, or the file itself; removed after."""
    backing = folder / f"{name}.target"
    with open(backing, "wb") as stream:
        stream.truncate(size)
    device = None
    try:
        if use_loop:
            done = subprocess.run(
                ["losetup", "-f", "--show", str(backing)],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            device = done.stdout.strip()
        yield device or str(backing)
    finally:
        if device:
            subprocess.run(["losetup", "-d", device], timeout=60, check=False)
        backing.unlink(missing_ok=True)


def loop_devices_work(folder: Path) -> str | None:
    """None when losetup works here, else why not."""
    if os.geteuid() != 0:
        return "not root"
    if shutil.which("losetup") is None:
        return "losetup is missing"
    try:
        with target(folder, "probe", 1024 * 1024, use_loop=True):
            return None
    except (OSError, subprocess.SubprocessError) as exc:
        return f"losetup failed: {exc}"


def dd_openssl(image: Path, device: str, size: int) -> tuple[float, str]:
    """Seconds for dd write + uncached dd read piped into openssl, and the digest."""
    drop_caches()
    started = time.perf_counter()
    subprocess.run(
        ["dd", f"if={image}", f"of={device}", "bs=4M", "oflag=direct", "conv=fsync"],
        capture_output=True,
        timeout=TIMEOUT,
        check=True,
    )
    drop_caches()
    digest = _read_back(device, size)
    return time.perf_counter() - started, digest


def _read_back(device: str, size: int) -> str:
    reader = subprocess.Popen(
        ["dd", f"if={device}", "bs=4M", "iflag=direct,count_bytes", f"count={size}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        hasher = subprocess.run(
            ["openssl", "dgst", "-sha256", "-r"],
            stdin=reader.stdout,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=True,
        )
    finally:
        if reader.stdout is not None:
            reader.stdout.close()
        reader.wait(timeout=TIMEOUT)
    return hasher.stdout.split()[0]


def kiosk(
    image: Path, device: str, digest: str, size: int
) -> tuple[float, FlashResult]:
    drop_caches()
    started = time.perf_counter()
    result = Flasher().flash(device, image, digest, size)
    return time.perf_counter() - started, result


def kiosk_parallel(
    image: Path, devices: list[str], digest: str, size: int
) -> tuple[float, list[FlashResult | None]]:
    drop_caches()
    flasher = Flasher()
    started = time.perf_counter()
    runs = [flasher.start(device, image, digest, size) for device in devices]
    results = [run.wait(TIMEOUT) for run in runs]
    return time.perf_counter() - started, results


def dd_openssl_parallel(image: Path, devices: list[str], size: int) -> float:
    """Seconds for dd+openssl on every device at once, each in its own thread."""
    drop_caches()
    started = time.perf_counter()
    with ThreadPoolExecutor(len(devices)) as pool:
        jobs = [pool.submit(_dd_openssl_warm, image, d, size) for d in devices]
        digests = [job.result() for job in jobs]
    check(len(set(digests)) == 1, "dd+openssl x3 read back different images")
    return time.perf_counter() - started


def _dd_openssl_warm(image: Path, device: str, size: int) -> str:
    # No cache drop inside: that would disturb the other runs.
    subprocess.run(
        ["dd", f"if={image}", f"of={device}", "bs=4M", "oflag=direct", "conv=fsync"],
        capture_output=True,
        timeout=TIMEOUT,
        check=True,
    )
    return _read_back(device, size)


def measure_round(
    image: Path, devices: list[str], digest: str, size: int, *, kiosk_first: bool
) -> dict[str, float]:
    """Seconds of each contender; the order flips between rounds."""
    seconds: dict[str, float] = {}

    def run_dd() -> None:
        seconds["dd"], read_back = dd_openssl(image, devices[0], size)
        check(read_back == digest, "dd+openssl read back a different image")
        show("dd+openssl", size, seconds["dd"])

    def run_kiosk() -> None:
        seconds["kiosk"], result = kiosk(image, devices[0], digest, size)
        check(result.passed, f"the kiosk's flash failed: {result.error}")
        show("kiosk", size, seconds["kiosk"])

    def run_kiosk3() -> None:
        seconds["kiosk3"], results = kiosk_parallel(image, devices, digest, size)
        failed = [
            r.error if r else "timed out" for r in results if not (r and r.passed)
        ]
        check(not failed, f"a parallel flash failed: {failed}")
        show("kiosk x3", 3 * size, seconds["kiosk3"])

    def run_dd3() -> None:
        seconds["dd3"] = dd_openssl_parallel(image, devices, size)
        show("dd+openssl x3", 3 * size, seconds["dd3"])

    order = [run_kiosk, run_dd, run_dd3, run_kiosk3]
    if not kiosk_first:
        order = [run_dd, run_kiosk, run_kiosk3, run_dd3]
    for step in order:
        step()
    return seconds


def show(name: str, size: int, seconds: float) -> None:
    print(f"{name:14} {seconds:7.2f} s  {rate(size, seconds):7.0f} MB/s", flush=True)


def check(condition: bool, message: str) -> None:
    """Stop the run (cleaning up on the way out) when a contender went wrong."""
    if not condition:
        raise SystemExit(message)


def rate(size: int, seconds: float) -> float:
    return size / seconds / MB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("2GiB"))
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp"))
    parser.add_argument(
        "--target-dir",
        type=Path,
        help="where the targets' backing files go (default: beside the image)",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="alternate the order; report medians"
    )
    args = parser.parse_args()
    size: int = args.size

    missing = [p for p in ("dd", "openssl") if shutil.which(p) is None]
    if missing:
        print(f"missing programs: {', '.join(missing)}", file=sys.stderr)
        return 2

    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=args.dir)))
        target_folder = folder
        if args.target_dir is not None:
            target_folder = Path(
                stack.enter_context(tempfile.TemporaryDirectory(dir=args.target_dir))
            )
        why_not = loop_devices_work(folder)
        use_loop = why_not is None
        kind = "loop device" if use_loop else "file"
        if why_not:
            print(f"note: targets are plain files ({why_not})")
        if not drop_caches():
            print("note: cannot drop the page cache (not root); reads may be cached")

        image = folder / "image.img"
        print(f"making a random image of {size / MB:,.0f} MB in {folder} …", flush=True)
        digest = make_image(image, size)
        devices = [
            stack.enter_context(target(target_folder, f"t{i}", size, use_loop))
            for i in range(3)
        ]
        print(f"targets ({kind} in {target_folder}): {', '.join(devices)}", flush=True)

        rounds = [
            measure_round(image, devices, digest, size, kiosk_first=bool(n % 2))
            for n in range(args.rounds)
        ]

    dd_seconds = statistics.median(r["dd"] for r in rounds)
    one_seconds = statistics.median(r["kiosk"] for r in rounds)
    par_seconds = statistics.median(r["kiosk3"] for r in rounds)
    dd3_seconds = statistics.median(r["dd3"] for r in rounds)
    ratio = one_seconds / dd_seconds
    efficiency = one_seconds / par_seconds  # (3·S/t3) / (3 · S/t1)
    dd_efficiency = dd_seconds / dd3_seconds
    print()
    if args.rounds > 1:
        print(f"medians of {args.rounds} rounds:")
    print(
        f"kiosk time / dd+openssl time: {ratio:.2f} (target ≤ {KIOSK_RATIO_TARGET}: "
        f"{'met' if ratio <= KIOSK_RATIO_TARGET else 'missed'})"
    )
    print(
        f"three at once vs 3 x one: {efficiency:.2f} (target ≥ {PARALLEL_TARGET}: "
        f"{'met' if efficiency >= PARALLEL_TARGET else 'missed'}; "
        f"{os.cpu_count()} cores hash three read-backs at once)"
    )
    print(
        "dd+openssl three at once vs 3 x one (what the disk allows): "
        f"{dd_efficiency:.2f}"
    )
    summary = {
        "size_bytes": size,
        "rounds": args.rounds,
        "targets": kind,
        "target_dir": str(args.target_dir or args.dir),
        "dd_openssl_seconds": round(dd_seconds, 3),
        "kiosk_seconds": round(one_seconds, 3),
        "parallel3_seconds": round(par_seconds, 3),
        "dd_openssl_mb_s": round(rate(size, dd_seconds), 1),
        "kiosk_mb_s": round(rate(size, one_seconds), 1),
        "parallel3_mb_s": round(rate(3 * size, par_seconds), 1),
        "kiosk_time_vs_dd_openssl": round(ratio, 3),
        "parallel3_efficiency": round(efficiency, 3),
        "dd_openssl_parallel3_seconds": round(dd3_seconds, 3),
        "dd_openssl_parallel3_efficiency": round(dd_efficiency, 3),
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
