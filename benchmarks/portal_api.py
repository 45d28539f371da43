"""The station API under load, against a bare Django view, in one run.

Starts a private SeaweedFS, a migrated database with one station and a few
published releases, and the portal under gunicorn (2 sync workers) on
127.0.0.1. Then 50 simulated stations take turns, in alternating rounds, at
four kinds of load, the first three closed-loop (a station sends its next
request as soon as its last one was answered):

- latest: every station calls GET /api/flash-images/latest, again and again;
- bare: the same on a view returning constant JSON, served by the same
  gunicorn with the same settings and middleware (benchmarks/bare_urls.py);
- stations: what a station does: latest, then POST /api/flash-images/download
  for the version it was told;
- paced: the same visits, but each station waits between them so that the
  fleet makes PACED_RATE visits a second: latency as stations meet it,
  rather than under a queue 50 deep (closed loops give 50 / throughput).

latest_* and the ratio come from the latest rounds, so both sides of the ratio
carry the same load; download_* come from the stations rounds. Targets are
printed next to the figures, not enforced. The last line is one JSON object.

    .venv/bin/python benchmarks/portal_api.py [--stations 50] [--rounds 2]

DATABASE_URL, when set, names the database to use instead of a temporary
SQLite file; what the run adds to it is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import logging
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import uvloop  # in requirements.lock, through uvicorn[standard]

from portal.local_s3 import HOST, LocalS3, free_port

REPO = Path(__file__).resolve().parent.parent
WORKERS = 2
CORES = os.cpu_count() or 1
LATEST_PATH = "/api/flash-images/latest"
DOWNLOAD_PATH = "/api/flash-images/download"
BARE_PATH = "/bench/bare"  # benchmarks/bare_urls.py
IMAGE_SIZE = 2**20
LATEST_P99_TARGET_MS = 25.0
RATIO_TARGET = 0.7
PACED_RATE = 100.0  # station visits (latest + download) per second, in all

WARMUP_SECONDS = 0.7
MAX_VISITS_PER_ROUND = 100_000
REQUEST_TIMEOUT = 30.0
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def main(argv: list[str] | None = None) -> int:
    options = _arguments(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    work = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    try:
        return _benchmark(options, work)
    except KeyboardInterrupt:
        print("Interrupted; gunicorn, SeaweedFS and the temporary files are gone.")
        return 130
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=_positive(int), default=50)
    parser.add_argument("--rounds", type=_positive(int), default=2)
    parser.add_argument("--round-seconds", type=_positive(float), default=3.5)
    parser.add_argument("--releases", type=_positive(int), default=4)
    return parser.parse_args(argv)


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} is not above zero")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # SystemExit unwinds through the finally blocks that stop the servers.
    sys.exit(128 + signum)


def _progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def _benchmark(options: argparse.Namespace, work: Path) -> int:
    _progress("starting SeaweedFS on 127.0.0.1")
    with LocalS3(work / "s3") as s3:
        fixtures = Fixtures.prepare(work, s3)
        try:
            fixtures.publish(work, options.releases)
            with _portal(work) as server:
                loads = uvloop.run(_measure(server, fixtures.token, options))
        finally:
            fixtures.remove()
    _report(loads, options, work / "gunicorn.log")
    return 0


# --- the database, the station and the releases ---------------------------


@dataclass
class Fixtures:
    """One station and its token, and the releases this run published."""

    token: str
    station_id: int
    release_ids: list[int]
    external_database: bool

    @classmethod
    def prepare(cls, work: Path, s3: LocalS3) -> Fixtures:
        """A migrated database with a new station in it."""
        external = _configure(work, s3)
        _progress("migrating " + ("DATABASE_URL" if external else "a fresh SQLite"))
        from django.core.management import call_command

        from portal.releases import storage
        from portal.stations.models import Station

        call_command("migrate", verbosity=0)
        storage.ensure_bucket()
        station = Station(name=f"Benchmark {secrets.token_hex(4)}")
        token = station.issue_token()
        station.save()
        return cls(token, station.pk, [], external)

    def publish(self, work: Path, count: int) -> None:
        """Publish v1.0.0 … through the portal's own pipeline command."""
        from portal.releases.models import Release

        for number in range(count):
            version = f"v1.0.{number}"
            if not Release.objects.filter(version=version).exists():
                self.release_ids.append(_publish(work, version))
        _progress(
            f"releases v1.0.0 to v1.0.{count - 1} published "
            f"({len(self.release_ids)} new, {IMAGE_SIZE // 2**20} MiB each)"
        )

    def remove(self) -> None:
        """Leave an external database as it was; a temporary one goes anyway."""
        from django.db import connections

        from portal.releases.models import DownloadGrant, Release
        from portal.stations.models import Station

        if self.external_database:
            DownloadGrant.objects.filter(station_id=self.station_id).delete()
            Release.objects.filter(pk__in=self.release_ids).delete()
            Station.objects.filter(pk=self.station_id).delete()
        connections.close_all()


def _configure(work: Path, s3: LocalS3) -> bool:
    """Settings for this process and gunicorn's; True for an external database."""
    external = bool(os.environ.get("DATABASE_URL"))
    os.environ.update(s3.env())
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{work / 'portal.sqlite3'}")
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    os.environ["PORTAL_SECRET_KEY"] = secrets.token_urlsafe(40)
    os.environ["PORTAL_DEBUG"] = "0"  # as in production: debug mode costs per request
    os.environ["PORTAL_ALLOWED_HOSTS"] = HOST
    import django

    django.setup()
    # Upload and migration lines would bury the progress lines.
    logging.getLogger("portal").setLevel(logging.WARNING)
    return external


def _publish(work: Path, version: str) -> int:
    from django.core.management import call_command

    from portal.releases.models import Release

    image = work / f"FlashingApp_{version}.img"
    image.write_bytes(hashlib.sha256(version.encode()).digest() * (IMAGE_SIZE // 32))
    call_command(
        "publish_release",
        str(image),
        "--version",
        version,
        "--publish",
        "--no-progress",
        stdout=io.StringIO(),
    )
    image.unlink()
    return Release.objects.get(version=version).pk


# --- gunicorn ---------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    port: int
    pid: int  # gunicorn's master; its children are the workers


@contextmanager
def _portal(work: Path) -> Iterator[Server]:
    """The portal under gunicorn on a free loopback port."""
    port = free_port()
    log = work / "gunicorn.log"
    _progress(f"starting gunicorn ({WORKERS} workers) on {HOST}:{port}")
    with log.open("wb") as output:
        server = subprocess.Popen(
            _gunicorn_command(port),
            cwd=REPO,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.bare_settings"},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_ready(server, port, log)
        yield Server(port, server.pid)
    finally:
        _stop(server)


def _gunicorn_command(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "portal.wsgi",
        "--bind",
        f"{HOST}:{port}",
        "--workers",
        str(WORKERS),
        "--chdir",
        str(REPO),
        # gunicorn 27 puts the control socket of every instance at one path,
        # ~/.gunicorn/gunicorn.ctl; a second gunicorn (tests, the demo) would
        # take it over, and the first one to stop would delete it.
        "--no-control-socket",
    ]


def _wait_until_ready(server: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    probe = _http_request("GET", BARE_PATH, port, token="")
    while True:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited early:\n{_tail(log)}")
        try:
            status, _ = uvloop.run(_send(probe, port))
        except (OSError, ValueError):
            status = 0
        if status == 200:
            return
        if time.monotonic() > deadline:
            raise SystemExit(
                f"gunicorn did not answer in {START_TIMEOUT:.0f} s:\n{_tail(log)}"
            )
        time.sleep(0.2)


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)  # its own session: only gunicorn
            server.wait(STOP_TIMEOUT)
    _progress("gunicorn stopped")


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


# --- the load generator -----------------------------------------------------
#
# It shares the two cores with gunicorn, so every microsecond it spends per
# request is taken from the server, and a client that saturates first flattens
# both sides of the ratio towards 1. wrk is not installed and cannot follow
# latest -> download with the version it was told. Measured here against the
# bare view (client CPU per request, its share of loopback TCP included):
# httpx's AsyncClient 2.4 ms, so the bare view seemed to top out at 380 req/s
# with the client at 90 % of a core; aiohttp 0.65 ms; raw HTTP/1.1 on uvloop
# streams with prebuilt request bytes 0.2 ms, and the bare view reached 2,200
# req/s. gunicorn's sync workers close the connection after every answer
# anyway, so a full client would bring nothing but its cost.


def _http_request(
    method: str, path: str, port: int, token: str, body: bytes = b""
) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {HOST}:{port}",
        f"Authorization: Bearer {token}",
        "Accept: application/json",
        "Connection: close",
    ]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return "\r\n".join([*lines, "", ""]).encode() + body


async def _send(request: bytes, port: int) -> tuple[int, bytes]:
    """Status and body of one answer, on a connection of its own."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(request)
        answer = await reader.read()  # to the end: we asked for Connection: close
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head[9:12]), body


class StationClient:
    """The requests of a station, built once."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self.latest = _http_request("GET", LATEST_PATH, port, token)
        self.bare = _http_request("GET", BARE_PATH, port, token)
        self._downloads: dict[str, bytes] = {}

    def download(self, version: str) -> bytes:
        if version not in self._downloads:
            body = json.dumps({"version": version}).encode()
            self._downloads[version] = _http_request(
                "POST", DOWNLOAD_PATH, self.port, self.token, body
            )
        return self._downloads[version]


@dataclass
class Tally:
    """The answers of one endpoint: seconds per good one, the rest by reason."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    first_error: str = ""

    def failed(self, reason: str, body: bytes = b"") -> None:
        self.errors[reason] += 1
        if not self.first_error:
            self.first_error = f"{reason} {body[:200]!r}"


@dataclass
class Load:
    """All rounds of one kind of load, with the CPU they took."""

    name: str
    tallies: defaultdict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    seconds: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    machine_busy: float = 0.0

    @property
    def answers(self) -> int:
        return sum(len(tally.latencies) for tally in self.tallies.values())

    def cpu_per_answer(self) -> float:
        return self.server_cpu / self.answers if self.answers else 0.0

    def rate(self, endpoint: str) -> float:
        answers = len(self.tallies[endpoint].latencies)
        return answers / self.seconds if self.seconds else 0.0

    def p_ms(self, endpoint: str, share: float) -> float | None:
        """The latency `share` of the answers stayed within (nearest rank)."""
        ordered = sorted(self.tallies[endpoint].latencies)
        if not ordered:
            return None
        rank = min(len(ordered), max(1, round(share * len(ordered))))
        return round(ordered[rank - 1] * 1000, 2)


async def _timed(tally: Tally, client: StationClient, request: bytes) -> bytes | None:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            status, body = await _send(request, client.port)
    except (OSError, TimeoutError, ValueError) as exc:
        tally.failed(type(exc).__name__)
        return None
    if status != 200:
        tally.failed(f"HTTP {status}", body)
        return None
    tally.latencies.append(time.perf_counter() - started)
    return body


async def _latest_only(client: StationClient, load: Load) -> None:
    await _timed(load.tallies["latest"], client, client.latest)


async def _bare_only(client: StationClient, load: Load) -> None:
    await _timed(load.tallies["bare"], client, client.bare)


async def _station_visit(client: StationClient, load: Load) -> None:
    body = await _timed(load.tallies["latest"], client, client.latest)
    if body is None:
        return
    version = json.loads(body)["version"]
    await _timed(load.tallies["download"], client, client.download(version))


Visit = Callable[[StationClient, Load], Awaitable[None]]
VISITS: dict[str, Visit] = {
    "latest": _latest_only,
    "bare": _bare_only,
    "stations": _station_visit,
    "paced": _station_visit,
}


async def _measure(
    server: Server, token: str, options: argparse.Namespace
) -> list[Load]:
    client = StationClient(server.port, token)
    _progress(f"warming up: {WARMUP_SECONDS:.1f} s of each load")
    for name in VISITS:
        await _round(Load(name), client, options.stations, WARMUP_SECONDS, server)

    # Alternating short rounds spread the noise of other processes over all
    # three loads instead of letting it land on one of them.
    loads = [Load(name) for name in VISITS]
    for number in range(1, options.rounds + 1):
        for load in loads:
            seconds = options.round_seconds
            done = await _round(load, client, options.stations, seconds, server)
            _progress(f"round {number}/{options.rounds} {load.name:<8} {done}")
    return loads


async def _round(
    load: Load, client: StationClient, stations: int, seconds: float, server: Server
) -> str:
    """Run `stations` closed loops of one visit for `seconds`; adds to `load`."""
    answers_before = load.answers
    budget = [MAX_VISITS_PER_ROUND]
    deadline = time.perf_counter() + seconds
    usage = Usage.now(server.pid)

    # Closed loops measure capacity, but 50 stations asking back-to-back make
    # latency 50 / throughput by Little's law. The paced load is what a fleet
    # does: each station visits, then waits, `paced_rate` visits/s in all.
    pause = stations / PACED_RATE if load.name == "paced" else 0.0

    async def station() -> None:
        if pause:
            await asyncio.sleep(random.uniform(0, pause))
        while time.perf_counter() < deadline and budget[0] > 0:
            budget[0] -= 1
            started = time.perf_counter()
            await VISITS[load.name](client, load)
            if pause:
                await asyncio.sleep(max(0.0, pause - (time.perf_counter() - started)))

    await asyncio.gather(*(station() for _ in range(stations)))
    elapsed = usage.add_to(load, server.pid)
    answers = load.answers - answers_before
    return f"{answers} answers, {answers / elapsed:.0f} req/s"


# --- CPU accounting (Linux /proc) ------------------------------------------


def _cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return 0.0
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _workers_cpu(master: int) -> float:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return sum(_cpu_seconds(int(pid)) for pid in children)


def _machine_busy() -> float:
    """CPU seconds all cores spent busy since boot (not idle, not waiting on I/O)."""
    ticks = [int(part) for part in Path("/proc/stat").read_text().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


@dataclass
class Usage:
    """Wall time and CPU seconds of client, workers and machine at one moment."""

    wall: float
    client: float
    server: float
    machine: float

    @classmethod
    def now(cls, master: int) -> Usage:
        return cls(
            time.perf_counter(),
            time.process_time(),
            _workers_cpu(master),
            _machine_busy(),
        )

    def add_to(self, load: Load, master: int) -> float:
        """Add what was used since this moment to `load`; returns the wall time."""
        end = Usage.now(master)
        load.seconds += end.wall - self.wall
        load.client_cpu += end.client - self.client
        load.server_cpu += end.server - self.server
        load.machine_busy += end.machine - self.machine
        return end.wall - self.wall


# --- the report -------------------------------------------------------------


def _report(loads: list[Load], options: argparse.Namespace, log: Path) -> None:
    print()
    print(f"{options.stations} stations, closed loop, gunicorn {WORKERS} sync workers")
    print(
        f"{'load':<9}{'endpoint':<10}{'answers':>8}{'errors':>7}{'req/s':>8}"
        f"{'p50 ms':>8}{'p99 ms':>8}"
    )
    for load in loads:
        for endpoint, tally in load.tallies.items():
            print(
                f"{load.name:<9}{endpoint:<10}{len(tally.latencies):>8}"
                f"{tally.errors.total():>7}{load.rate(endpoint):>8.0f}"
                f"{_ms(load.p_ms(endpoint, 0.5)):>8}{_ms(load.p_ms(endpoint, 0.99)):>8}"
            )
    print()
    _print_usage(loads)
    _print_errors(loads, log)
    summary = _summary({load.name: load for load in loads}, options)
    print()
    print(
        f"latest p99 {_ms(summary['latest_p99_ms'])} ms "
        f"(target <= {LATEST_P99_TARGET_MS:.0f} ms); "
        f"paced at {PACED_RATE:.0f} visits/s: "
        f"{_ms(summary['paced_latest_p99_ms'])} ms\n"
        f"latest req/s / bare req/s {summary['ratio_vs_bare']} "
        f"(target >= {RATIO_TARGET}); "
        f"by server CPU per answer {summary['cpu_ratio_vs_bare']}"
    )
    print(json.dumps(summary), flush=True)


def _ms(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, float) else "-"


def _print_usage(loads: list[Load]) -> None:
    # Figures of two runs compare only when other processes left the cores alone.
    for load in loads:
        per_answer = 1000 * load.cpu_per_answer()
        print(
            f"{load.name:<9}server CPU {per_answer:.2f} ms/answer; of {CORES} cores "
            f"busy: server {_cores(load, load.server_cpu)}, "
            f"client {_cores(load, load.client_cpu)}, "
            f"other processes {_cores(load, _others_cpu(load))}"
        )


def _cores(load: Load, cpu_seconds: float) -> str:
    return f"{cpu_seconds / load.seconds:.2f}" if load.seconds else "-"


def _others_cpu(load: Load) -> float:
    return max(load.machine_busy - load.client_cpu - load.server_cpu, 0.0)


def _print_errors(loads: list[Load], log: Path) -> None:
    failed = False
    for load in loads:
        for endpoint, tally in load.tallies.items():
            if tally.errors:
                failed = True
                reasons = ", ".join(f"{n}x {why}" for why, n in tally.errors.items())
                print(f"errors {load.name}/{endpoint}: {reasons}")
                print(f"  first: {tally.first_error}")
    if failed:
        print(f"gunicorn's last lines:\n{_tail(log)}")


def _summary(loads: dict[str, Load], options: argparse.Namespace) -> dict[str, object]:
    latest, bare, stations = loads["latest"], loads["bare"], loads["stations"]
    return {
        "latest_p99_ms": latest.p_ms("latest", 0.99),
        "latest_p50_ms": latest.p_ms("latest", 0.5),
        "latest_rps": round(latest.rate("latest"), 1),
        "bare_p99_ms": bare.p_ms("bare", 0.99),
        "bare_p50_ms": bare.p_ms("bare", 0.5),
        "bare_rps": round(bare.rate("bare"), 1),
        "ratio_vs_bare": (
            round(latest.rate("latest") / bare.rate("bare"), 3)
            if bare.rate("bare")
            else None
        ),
        "download_p99_ms": stations.p_ms("download", 0.99),
        "download_p50_ms": stations.p_ms("download", 0.5),
        "download_rps": round(stations.rate("download"), 1),
        "stations_latest_p99_ms": stations.p_ms("latest", 0.99),
        "paced_visits_per_s": PACED_RATE,
        "paced_latest_p99_ms": loads["paced"].p_ms("latest", 0.99),
        "paced_download_p99_ms": loads["paced"].p_ms("download", 0.99),
        "stations_latest_rps": round(stations.rate("latest"), 1),
        "errors": sum(
            tally.errors.total()
            for load in loads.values()
            for tally in load.tallies.values()
        ),
        "server_cpu_ms": {
            name: round(1000 * load.cpu_per_answer(), 2) for name, load in loads.items()
        },
        # What the ratio would be if the workers had the cores to themselves:
        # steadier than req/s while other processes compete for the cores.
        "cpu_ratio_vs_bare": (
            round(bare.cpu_per_answer() / latest.cpu_per_answer(), 3)
            if latest.cpu_per_answer()
            else None
        ),
        "other_processes_cores": round(
            sum(_others_cpu(load) for load in loads.values())
            / sum(load.seconds for load in loads.values()),
            2,
        ),
        "stations": options.stations,
        "workers": WORKERS,
        "latest_p99_target_ms": LATEST_P99_TARGET_MS,
        "ratio_target": RATIO_TARGET,
    }


if __name__ == "__main__":
    sys.exit(main())
