"""The header on every screen: station, portal state, outbox, update banner."""

from __future__ import annotations

from nicegui import ui

from kiosk.errors import KioskError
from kiosk.station import Station
from kiosk.ui import theme
from kiosk.ui.worker import blocking
from kiosk.updates import UpdateStatus
from kiosk.versions import Version

SCREENS = (
    ("Flash", "/", "bolt"),
    ("Download", "/download", "download"),
    ("History", "/history", "history"),
    ("Settings", "/settings", "settings"),
)
PENDING_EVERY = 5.0  # seconds between outbox counts (a database query)


def banner_version(status: UpdateStatus, dismissed: set[Version]) -> Version | None:
    """The release to announce: newer than every local image, not dismissed."""
    if status.offline or status.latest is None:
        return None
    latest = status.latest.version
    if status.downloading or latest in dismissed:
        return None
    if any(local >= latest for local in status.local):
        return None
    return latest


def portal_state(station: Station, status: UpdateStatus) -> str:
    """`Online`, `Offline since 10:42` or `No portal set up`."""
    if station.client is None:
        return "No portal set up"
    if status.offline_since is not None:
        return f"Offline since {status.offline_since:%H:%M}"
    return "Online" if status.checked_at is not None else "Portal not checked yet"


async def get_latest(station: Station) -> None:
    """Start the download of the latest release and show its progress."""
    try:
        await blocking(station.updates.start_download)
    except KioskError as exc:
        ui.notify(exc.message, type="negative", multi_line=True)
        return
    ui.navigate.to("/download")


def render(station: Station) -> None:
    """Draw the header and keep it current with a timer."""
    with ui.header().classes("bg-white text-black shadow-md q-pa-none column"):
        with ui.row().classes("w-full items-center no-wrap q-px-md q-py-sm gap-4"):
            ui.icon("memory", size="32px").classes("text-primary")
            ui.label(station.name).classes("text-h6 text-weight-bold")
            portal = ui.label().classes("kiosk-muted").props("data-testid=portal")
            pending = ui.label().classes("kiosk-muted").props("data-testid=pending")
            ui.space()
            for title, path, icon in SCREENS:
                ui.button(
                    title, icon=icon, on_click=lambda p=path: ui.navigate.to(p)
                ).props("flat no-caps")
        banner = ui.row().classes(
            "kiosk-banner w-full items-center no-wrap q-px-md q-py-sm gap-4"
        )
    with banner:
        ui.icon("new_releases", size="32px")
        banner_text = ui.label().classes("text-weight-bold").props("data-testid=banner")
        ui.space()
        ui.button(
            "Get Latest", icon="download", on_click=lambda: get_latest(station)
        ).classes(theme.PRIMARY).props("unelevated no-caps").mark("get-latest")
        dismiss = ui.button("Not now", icon="close").props("outline no-caps")
        dismiss.mark("dismiss")

    def refresh() -> None:
        status = station.updates.status()
        portal.text = portal_state(station, status)
        count = station.pending_records
        pending.text = (
            f"{count} flash record{'s' if count != 1 else ''} waiting to be sent"
            if station.outbox is not None
            else ""
        )
        version = banner_version(status, station.dismissed)
        banner.set_visibility(version is not None)
        if version is not None:
            banner_text.text = f"New version {version} available"

    def dismiss_banner() -> None:
        version = banner_version(station.updates.status(), station.dismissed)
        if version is not None:
            station.dismissed.add(version)
        refresh()

    async def count_pending() -> None:
        await blocking(station.refresh_pending)
        refresh()

    dismiss.on_click(dismiss_banner)
    refresh()
    ui.timer(0.5, refresh)
    ui.timer(PENDING_EVERY, count_pending, immediate=True)
