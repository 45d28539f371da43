"""The station's command line, for headless stations and operators.

    python -m kiosk check               what the portal offers, what is here
    python -m kiosk download [VERSION]  fetch a release (default: the latest)
    python -m kiosk images [--verify]   list local images, optionally re-hash
    python -m kiosk drives              the disks here, offered or why not
    python -m kiosk flash VERSION DEVICE…   write and verify drives, logged
    python -m kiosk sync                send the unsent flash records to the portal
    python -m kiosk log export --format csv|json [--since DATE] [--until DATE]
        [--serial TEXT] [--status passed|failed|…]
    python -m kiosk ui [--port N]       the touch screens on 127.0.0.1

Flash records wait in the outbox (the station database) until the portal has
them. `flash` tries once, briefly, to send them when it ends; whatever it could
not send waits for `sync`, which sends every unsent record in batches.

Exit codes: 0 done, 1 failed, 2 bad settings or arguments, 3 portal
unreachable, 130 interrupted; `sync` exits 1 when the portal refused records
and 2 when no portal is set up, and `flash` exits as its flashes ended,
whether or not the records could be sent. Errors are one sentence on stderr;
details go to logs/app_errors.log.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from kiosk import __version__, applog, config, drives
from kiosk.config import Settings
from kiosk.db import open_database
from kiosk.downloads import Downloader
from kiosk.errors import (
    ConfigError,
    KioskError,
    LibraryError,
    PortalError,
    PortalOffline,
)
from kiosk.flashing import Progress
from kiosk.flashjobs import FlashJobs
from kiosk.flashlog import FlashLog, Status
from kiosk.library import Library, human_size
from kiosk.outbox import Outbox, SyncResult
from kiosk.portal_client import PortalClient
from kiosk.updates import DownloadState, Updates, UpdateStatus
from kiosk.versions import InvalidVersion, Version

__all__ = ["build_parser", "main"]

log = logging.getLogger(__name__)

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_OFFLINE = 3
EXIT_INTERRUPTED = 130
# After a flash the operator waits for the prompt: one try, no retries.
SEND_AFTER_FLASH_TIMEOUT = 10.0

Command = Callable[[argparse.Namespace, Settings], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; KioskErrors become a sentence and an exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = config.load(args.data_dir)
        settings.make_dirs()
        applog.setup(
            settings.logs_dir,
            console_level=logging.WARNING if args.quiet else logging.INFO,
        )
        command: Command = args.run
        return command(args, settings)
    except ConfigError as exc:
        print(exc.message, file=sys.stderr)
        return EXIT_USAGE
    except PortalOffline as exc:
        print(exc.message, file=sys.stderr)
        return EXIT_OFFLINE
    except KioskError as exc:
        print(exc.message, file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    """The parser; each command adds its own subparser, so more can follow."""
    parser = argparse.ArgumentParser(
        prog="flash-kiosk",
        description="Flashing station: updates, images, drives and the flash log.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="the station's data directory (default: $KIOSK_DATA_DIR, "
        "else ~/.local/share/flashstation)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="log warnings and errors only"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in (
        _add_check,
        _add_download,
        _add_images,
        _add_drives,
        _add_flash,
        _add_sync,
        _add_log,
        _add_ui,
    ):
        register(commands)
    return parser


Subparsers = argparse._SubParsersAction  # argparse names no public type for it


def _add_check(commands: Subparsers[argparse.ArgumentParser]) -> None:
    check = commands.add_parser("check", help="ask the portal for its latest release")
    check.set_defaults(run=run_check)


def _add_download(commands: Subparsers[argparse.ArgumentParser]) -> None:
    download = commands.add_parser(
        "download", help="download a release into recommended/"
    )
    download.add_argument(
        "version", nargs="?", help="e.g. v1.2.3 (default: the latest release)"
    )
    download.set_defaults(run=run_download)


def _add_images(commands: Subparsers[argparse.ArgumentParser]) -> None:
    images = commands.add_parser("images", help="list the images on this station")
    images.add_argument(
        "--verify", action="store_true", help="hash every image again (slow)"
    )
    images.set_defaults(run=run_images)


def _add_drives(commands: Subparsers[argparse.ArgumentParser]) -> None:
    drives_parser = commands.add_parser(
        "drives", help="list the disks here and whether they can be flashed"
    )
    drives_parser.set_defaults(run=run_drives)


def _add_flash(commands: Subparsers[argparse.ArgumentParser]) -> None:
    flash = commands.add_parser(
        "flash", help="write an image to drives and verify them by reading back"
    )
    flash.add_argument("version", help="a local image, e.g. v1.2.3")
    flash.add_argument("devices", nargs="+", metavar="DEVICE", help="e.g. /dev/sdb")
    flash.set_defaults(run=run_flash)


def _add_sync(commands: Subparsers[argparse.ArgumentParser]) -> None:
    sync = commands.add_parser(
        "sync", help="send the flash records the portal does not have yet"
    )
    sync.set_defaults(run=run_sync)


def _add_log(commands: Subparsers[argparse.ArgumentParser]) -> None:
    log_parser = commands.add_parser("log", help="the flash log")
    actions = log_parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="write flash records as CSV or JSON")
    export.add_argument("--format", choices=["csv", "json"], default="csv")
    export.add_argument(
        "--since", type=_date, help="from this day or time (UTC), e.g. 2026-12-01"
    )
    export.add_argument("--until", type=_date, help="before this day or time (UTC)")
    export.add_argument("--serial", help="only drives whose serial contains this")
    export.add_argument(
        "--status",
        choices=[status.value for status in Status],
        help="only flashes that ended so",
    )
    export.add_argument(
        "--output",
        help="file to write, or - for standard output "
        "(default: logs/flash_operations.csv or .json)",
    )
    export.set_defaults(run=run_log_export)


def _add_ui(commands: Subparsers[argparse.ArgumentParser]) -> None:
    screens = commands.add_parser("ui", help="serve the touch screens on 127.0.0.1")
    screens.add_argument(
        "--port",
        type=int,
        help="port to listen on (default: $KIOSK_PORT, else 8080)",
    )
    screens.set_defaults(run=run_ui)


def run_ui(args: argparse.Namespace, settings: Settings) -> int:
    """Build the station, start its background work and serve the screens."""
    # Imported here: the other commands should not pay for loading NiceGUI.
    from kiosk.station import Station
    from kiosk.ui import app

    port = args.port if args.port is not None else _port_from_env()
    station = Station(settings)
    station.start()
    app.run(station, port=port)
    return 0


def _port_from_env() -> int:
    text = os.environ.get("KIOSK_PORT") or "8080"
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"KIOSK_PORT must be a port number, not {text!r}.")
    return int(text)


def run_check(args: argparse.Namespace, settings: Settings) -> int:
    """Print the portal's latest release and the local images."""
    library = _library(settings)
    library.clean()
    with _client(settings) as client:
        status = _updates(settings, library, client).check()
    _print_status(status)
    if status.offline:
        return EXIT_OFFLINE
    return EXIT_FAILED if status.error else 0


def run_download(args: argparse.Namespace, settings: Settings) -> int:
    """Download a release with a progress bar; Ctrl-C cancels it."""
    version = _parse_version(args.version) if args.version else None
    library = _library(settings)
    library.clean()
    with _client(settings) as client:
        updates = _updates(settings, library, client)
        started = updates.start_download(version)
        if started.state is DownloadState.DONE:
            print(f"{started.version} is already on this station.")
            return 0
        status = _follow(updates, started.total, str(started.version))

    download = status.download
    assert download is not None
    if download.state is DownloadState.DONE:
        where = settings.recommended_dir / download.version.image_name
        print(f"{download.version} is verified and ready: {where}")
        return 0
    print(download.error, file=sys.stderr)
    if download.state is DownloadState.CANCELLED:
        return EXIT_INTERRUPTED
    return EXIT_OFFLINE if status.offline else EXIT_FAILED


def run_images(args: argparse.Namespace, settings: Settings) -> int:
    """List the local images; with --verify, hash each one again."""
    library = _library(settings)
    library.clean()
    images = library.images()
    if not images:
        print("No images on this station yet; run `download` to fetch one.")
        return 0
    failed = 0
    for image in images:
        print(
            f"{image.version}\t{human_size(image.size)}\t"
            f"sha256:{image.sha256[:12]}…\t{image.path.name}"
        )
        if args.verify:
            failed += not _verify(library, image.version, image.size)
    return EXIT_FAILED if failed else 0


def run_drives(args: argparse.Namespace, settings: Settings) -> int:
    """Every disk, offered for the newest local image or with the reason not."""
    newest = _library(settings).images()
    size = newest[0].size if newest else 0
    found = drives.list_drives(
        image_size=size,
        data_dir=settings.data_dir,
        allow_loop=settings.allow_loop_targets,
    )
    for drive in found:
        verdict = "offered" if drive.offered else drive.reason
        print(f"{drive.path}\t{drive.label}\tserial {drive.serial or '?'}\t{verdict}")
    if not any(drive.offered for drive in found):
        print("No drive can be flashed right now; plug in a USB drive.")
    return 0


def run_flash(args: argparse.Namespace, settings: Settings) -> int:
    """Flash every device at once, a progress bar each; Ctrl-C cancels all."""
    version = _parse_version(args.version)
    sessions = open_database(settings.database_path)
    flash_log = _flash_log(settings, sessions)
    runner = FlashJobs(
        _library(settings),
        flash_log,
        data_dir=settings.data_dir,
        allow_without_serial=settings.allow_flash_without_serial,
        allow_loop=settings.allow_loop_targets,
    )
    with logging_redirect_tqdm():
        bars = {
            device: tqdm(desc=device, unit="B", unit_scale=True, position=number)
            for number, device in enumerate(args.devices)
        }
        jobs = [
            runner.start(device, version, _bar_update(bars)) for device in args.devices
        ]
        try:
            outcomes = [job.wait() for job in jobs]
        except KeyboardInterrupt:
            for job in jobs:
                job.cancel()
            outcomes = [job.wait() for job in jobs]
        for bar in bars.values():
            bar.close()

    for job, outcome in zip(jobs, outcomes, strict=True):
        if outcome is None or not outcome.passed:
            reason = outcome.error if outcome else "no result"
            print(f"FAIL  {job.device}: {reason}")
        else:
            print(f"PASS  {job.device} serial {outcome.serial or '?'} ({outcome.slot})")
    if settings.portal_configured:
        _send_after_flash(settings, sessions)
    return 0 if all(o is not None and o.passed for o in outcomes) else EXIT_FAILED


def _bar_update(bars: dict[str, tqdm[Any]]) -> Callable[[Progress], None]:
    def update(progress: Progress) -> None:
        bar, label = bars[progress.target], f"{progress.target} {progress.phase}"
        if bar.desc != label:  # a new phase starts its bar again
            bar.reset(total=progress.total_bytes)
            bar.set_description(label)
        bar.update(progress.done_bytes - bar.n)

    return update


def _send_after_flash(settings: Settings, sessions: sessionmaker[Session]) -> None:
    """One short try to send the outbox; what is not sent waits for `sync`."""
    with PortalClient(
        settings.api_base_url,
        settings.station_token,
        timeout=SEND_AFTER_FLASH_TIMEOUT,
        retries=0,
    ) as client:
        outbox = Outbox(sessions, client)
        try:
            # One batch: a backlog is `sync`'s work, not the flash's.
            result = outbox.send(max_batches=1)
        except PortalError as exc:
            offline = isinstance(exc, PortalOffline)
            why = f"{_unreachable(client)};" if offline else exc.message
            print(f"{why} {_waiting(outbox.pending())} for the next `sync`.")
            return
        except Exception:  # the flashes decide the exit code, not the send
            log.exception("sending flash records after the flash failed")
            print(
                "The flash records could not be sent (see logs/app_errors.log); "
                "they wait for the next `sync`."
            )
            return
    print(_sent(result))


def run_sync(args: argparse.Namespace, settings: Settings) -> int:
    """Send every unsent flash record to the portal now, in batches."""
    with _client(settings) as client:
        outbox = Outbox(open_database(settings.database_path), client)
        before = outbox.pending()
        try:
            result = outbox.send()
        except PortalError as exc:
            # Batches answered before the failure are done; the rest wait.
            waiting = outbox.pending()
            print(_sent(SyncResult(max(0, before - waiting), 0, waiting)))
            print(_unsent(exc, client), file=sys.stderr)
            return EXIT_OFFLINE if isinstance(exc, PortalOffline) else EXIT_FAILED
    print(_sent(result))
    if result.rejected:
        print(
            f"The portal refused {_records(result.rejected)}, which stay in this "
            "station's flash log and are not sent again; tell the portal's "
            "administrator.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return 0


def _unsent(exc: PortalError, client: PortalClient) -> str:
    if not isinstance(exc, PortalOffline):
        return exc.message
    return (
        f"{_unreachable(client)}, so the flash records stay in the outbox; "
        "check the network or api_base_url, then run `sync` again."
    )


def _unreachable(client: PortalClient) -> str:
    return f"The portal cannot be reached ({client.offline_reason})"


def _sent(result: SyncResult) -> str:
    refused = f", {result.rejected} refused" if result.rejected else ""
    return f"{_records(result.accepted)} sent{refused}; {result.pending} waiting."


def _waiting(count: int) -> str:
    return f"{_records(count)} {'waits' if count == 1 else 'wait'}"


def _records(count: int) -> str:
    return f"{count} flash record{'' if count == 1 else 's'}"


def run_log_export(args: argparse.Namespace, settings: Settings) -> int:
    """Stream the flash records to a file (or standard output)."""
    flash_log = _flash_log(settings, open_database(settings.database_path))
    filters: dict[str, Any] = {
        "since": args.since,
        "until": args.until,
        "serial": args.serial,
        "status": Status(args.status) if args.status else None,
    }
    if args.output == "-":
        count = flash_log.export(sys.stdout, args.format, **filters)
        print(f"{count} records exported.", file=sys.stderr)
        return 0
    path = (
        Path(args.output)
        if args.output
        else settings.logs_dir / f"flash_operations.{args.format}"
    )
    count = flash_log.save_export(path, args.format, **filters)
    print(f"{count} records exported to {path}.")
    return 0


def _flash_log(settings: Settings, sessions: sessionmaker[Session]) -> FlashLog:
    flash_log = FlashLog(sessions, settings.station_name or socket.gethostname())
    flash_log.mark_interrupted()
    return flash_log


def _date(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date; use 2026-12-01 or 2026-12-01T08:00"
        ) from None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _verify(library: Library, version: Version, size: int) -> bool:
    with (
        logging_redirect_tqdm(),
        tqdm(total=size, unit="B", unit_scale=True, desc=f"verify {version}") as bar,
    ):

        def advance(done: int, _total: int) -> None:
            bar.update(done - bar.n)

        try:
            library.verify(version, advance)
        except LibraryError as exc:
            bar.close()
            print(exc.message, file=sys.stderr)
            return False
    print(f"{version} verified.")
    return True


def _follow(updates: Updates, total: int, label: str) -> UpdateStatus:
    """Draw the running download until it ends; Ctrl-C cancels it."""
    with (
        logging_redirect_tqdm(),
        tqdm(total=total, unit="B", unit_scale=True, desc=label) as bar,
    ):
        try:
            while updates.status().downloading:
                _draw(bar, updates.wait(0.25))
        except KeyboardInterrupt:
            updates.cancel()
            bar.write("Cancelling the download.")
            updates.wait()
        status = updates.status()
        _draw(bar, status)
    return status


def _draw(bar: tqdm[Any], status: UpdateStatus) -> None:
    if status.download is not None and status.download.done != bar.n:
        bar.update(status.download.done - bar.n)


def _print_status(status: UpdateStatus) -> None:
    if status.error:
        print(status.error)
    elif status.no_release:
        print("No release has been published yet.")
    if status.latest is not None:
        latest = status.latest
        print(
            f"Latest release: {latest.version} ({latest.release_date}, "
            f"{human_size(latest.file_size)})"
            + (f" — {latest.description}" if latest.description else "")
        )
    local = ", ".join(str(v) for v in status.local) or "none"
    print(f"On this station: {local}")
    if status.update_available and status.latest is not None:
        print(
            f"Update available: {status.latest.version}; "
            "run `python -m kiosk download` to fetch it."
        )
    elif status.latest is not None:
        print("This station is up to date.")


def _parse_version(text: str) -> Version:
    try:
        return Version.parse(text)
    except InvalidVersion as exc:
        raise ConfigError(str(exc)) from None


def _library(settings: Settings) -> Library:
    return Library(
        settings.recommended_dir,
        settings.quarantine_dir,
        keep=settings.max_stored_versions,
    )


def _client(settings: Settings) -> PortalClient:
    if not settings.portal_configured:
        raise ConfigError(
            "No portal is set up; set api_base_url (and station_token) in "
            f"{settings.settings_file} or KIOSK_API_BASE_URL."
        )
    return PortalClient(settings.api_base_url, settings.station_token)


def _updates(settings: Settings, library: Library, client: PortalClient) -> Updates:
    downloader = Downloader(
        settings.staging_dir,
        segments=settings.download_segments,
        timeout=settings.download_timeout,
    )
    return Updates(library, downloader, client, staging_dir=settings.staging_dir)


if __name__ == "__main__":
    sys.exit(main())
