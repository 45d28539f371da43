"""Settings: check for updates, download location, versions kept, images, about."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from nicegui import ui

from kiosk import __version__, config
from kiosk.errors import ConfigError, KioskError, LibraryError
from kiosk.portal_client import Release
from kiosk.station import Station
from kiosk.ui import units
from kiosk.ui.worker import blocking
from kiosk.versions import Version


def save_storage(station: Station, location: str, keep: int) -> str:
    """Blocking: validate and store the two settings; the sentence to show.

    Raises ConfigError with the reason when a value or the folder is wrong.
    """
    settings = station.settings
    try:
        current = json.loads(settings.settings_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        current = {}
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"The settings file {settings.settings_file} cannot be read; fix it first."
        ) from exc
    wanted = {**current, "recommended_path": location, "max_stored_versions": keep}
    with tempfile.TemporaryDirectory() as scratch:
        Path(scratch, config.SETTINGS_FILE).write_text(json.dumps(wanted))
        config.load(Path(scratch), environ={})  # raises ConfigError naming the key
    folder = settings.data_dir / location
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"The folder {folder} cannot be created ({exc.strerror}); "
            "choose another download location."
        ) from exc
    if not os.access(folder, os.W_OK):
        raise ConfigError(
            f"The station may not write to {folder}; choose another download location."
        )

    partial = settings.settings_file.with_suffix(".json.partial")
    partial.write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")
    partial.replace(settings.settings_file)
    station.library.keep = keep  # takes effect at the next download
    if folder.resolve() != settings.recommended_dir.resolve():
        return f"Saved. Images go to {folder} after the station restarts."
    return f"Saved. The station keeps {keep} version(s)."


def render(station: Station) -> None:
    settings = station.settings
    ui.label("Settings").classes("text-h4")

    with ui.card().classes("w-full q-pa-md"):
        ui.label("Updates").classes("text-h5")
        checked = ui.label().props("data-testid=checked")
        ui.button("Check for updates now", icon="sync", on_click=lambda: check()).mark(
            "check-now"
        )

    with ui.card().classes("w-full q-pa-md"):
        ui.label("Storage").classes("text-h5")
        with ui.row().classes("items-end gap-4"):
            location = (
                ui.input("Download location", value=settings.recommended_path)
                .classes("w-96")
                .mark("location")
            )
            keep = (
                ui.number(
                    "Versions kept", value=station.library.keep, min=1, max=50, step=1
                )
                .classes("w-48")
                .mark("keep")
            )
            ui.button("Save", icon="save", on_click=lambda: save()).mark("save")
        ui.label(f"Images are in {settings.recommended_dir}").classes("kiosk-muted")

    with ui.card().classes("w-full q-pa-md"):
        ui.label("Images on this station").classes("text-h5")
        images = ui.column().classes("w-full gap-2")

    with ui.card().classes("w-full q-pa-md"):
        ui.label("Releases on the portal").classes("text-h5")
        releases = ui.column().classes("w-full gap-1")

    with ui.card().classes("w-full q-pa-md"):
        ui.label("About").classes("text-h5")
        ui.label(f"App version {__version__}")
        ui.label(f"Station {station.name}")
        ui.label(f"Portal {settings.api_base_url or 'not set up'}")
        ui.label(f"Data directory {settings.data_dir}")

    def show_checked() -> None:
        status = station.updates.status()
        if status.error:
            checked.text = status.error
        elif status.checked_at is not None:
            latest = status.latest.version if status.latest else "none published"
            checked.text = f"Checked at {status.checked_at:%H:%M}; latest: {latest}"
        else:
            checked.text = "Not checked yet."

    async def check() -> None:
        status = await blocking(station.updates.check)
        show_checked()
        if status.error:
            ui.notify(status.error, type="negative", multi_line=True)
        else:
            ui.notify("Update check done.", type="positive")
        await load()

    async def save() -> None:
        text = (location.value or "").strip()
        number = int(keep.value) if keep.value is not None else 0
        try:
            message = await blocking(save_storage, station, text, number)
        except KioskError as exc:
            ui.notify(exc.message, type="negative", multi_line=True)
            return
        ui.notify(message, type="positive")

    async def verify(version: Version) -> None:
        try:
            await blocking(station.library.verify, version)
        except LibraryError as exc:
            ui.notify(exc.message, type="negative", multi_line=True)
        else:
            ui.notify(f"{version} verified: its SHA-256 matches.", type="positive")
        await load()

    async def load() -> None:
        found = await blocking(station.library.images)
        images.clear()
        with images:
            if not found:
                ui.label("No images yet.")
            for image in found:
                with ui.row().classes("items-center gap-4"):
                    ui.icon("verified", size="32px", color="positive")
                    ui.label(
                        f"{image.version} · {units.human_size(image.size)} · "
                        f"verified (SHA-256 {image.sha256[:12]}…)"
                    )
                    ui.button(
                        "Verify again",
                        icon="fact_check",
                        on_click=lambda v=image.version: verify(v),
                    ).props("outline")
        await load_releases({image.version for image in found})

    async def load_releases(local: set[Version]) -> None:
        if station.client is None:
            releases.clear()
            with releases:
                ui.label("No portal is set up.")
            return
        try:
            found: list[Release] = await blocking(station.client.releases)
        except KioskError as exc:
            releases.clear()
            with releases:
                ui.label(exc.message)
            return
        releases.clear()
        with releases:
            for release in found:
                here = " · on this station" if release.version in local else ""
                ui.label(
                    f"{release.version} · {release.release_date} · "
                    f"{units.human_size(release.file_size)}{here}"
                    + (f" — {release.description}" if release.description else "")
                )

    show_checked()
    ui.timer(0.01, load, once=True)
