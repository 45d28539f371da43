"""The download screen: progress, cancel with confirmation, error with retry."""

from __future__ import annotations

from nicegui import ui

from kiosk.errors import KioskError
from kiosk.station import Station
from kiosk.ui import theme, units
from kiosk.ui.worker import blocking
from kiosk.updates import DownloadState, DownloadStatus, UpdateStatus
from kiosk.versions import Version


def progress_line(download: DownloadStatus) -> str:
    """`12.3 MB/s · 1 min 20 s left · 120.0 MB of 300.0 MB`."""
    return (
        f"{units.speed(download.speed)} · {units.duration(download.eta)} left · "
        f"{units.human_size(download.done)} of {units.human_size(download.total)}"
    )


# A download that was cancelled, or stopped with the station, leaves the screen
# as if none had run.
IDLE = (DownloadState.CANCELLED, DownloadState.STOPPED)


def screen_state(status: UpdateStatus) -> tuple[object, ...]:
    """What decides the screen's layout; progress alone only updates figures."""
    download = status.download
    latest = status.latest.version if status.latest else None
    if download is None or download.state in IDLE:
        return "idle", latest, status.local, status.error
    return download.state.value, download.version


async def start(station: Station, version: Version | None) -> None:
    """Start (or retry) a download in a worker thread; errors become a notice."""
    try:
        await blocking(station.updates.start_download, version)
    except KioskError as exc:
        ui.notify(exc.message, type="negative", multi_line=True)


def render(station: Station) -> None:
    """Draw the screen and follow the running download with a timer."""
    ui.label("Download").classes("text-h4")
    body = ui.column().classes("w-full gap-4")
    bar: list[ui.linear_progress] = []
    figures: list[ui.label] = []
    shown: list[tuple[object, ...]] = []

    with ui.dialog() as confirm, ui.card().classes("q-pa-lg"):
        question = ui.label().classes("text-h6")
        ui.label("The part downloaded so far is deleted.")
        with ui.row().classes("gap-4"):
            ui.button("Keep downloading", on_click=confirm.close).props("outline")
            ui.button(
                "Cancel download",
                icon="stop",
                color="negative",
                on_click=lambda: stop(),
            ).mark("confirm-cancel")

    def stop() -> None:
        station.updates.cancel()
        confirm.close()

    def ask_cancel(version: Version) -> None:
        question.text = f"Cancel the download of {version}?"
        confirm.open()

    def draw(status: UpdateStatus) -> None:
        body.clear()
        bar.clear()
        figures.clear()
        download = status.download
        with body:
            if download is None or download.state in IDLE:
                _idle(station, status, download)
            elif download.state is DownloadState.RUNNING:
                ui.label(f"Downloading {download.version}").classes("text-h5")
                bar.append(
                    ui.linear_progress(value=0, show_value=False, size="28px").props(
                        "rounded instant-feedback"
                    )
                )
                figures.append(ui.label().classes("text-h5").props("data-testid=pct"))
                figures.append(ui.label().props("data-testid=figures"))
                ui.button(
                    "Cancel",
                    icon="stop",
                    color="negative",
                    on_click=lambda v=download.version: ask_cancel(v),
                ).classes(theme.PRIMARY).mark("cancel-download")
            elif download.state is DownloadState.DONE:
                with ui.row().classes("items-center gap-4"):
                    ui.icon("check_circle", size="64px", color="positive")
                    ui.label(f"{download.version} is ready — verified").classes(
                        "text-h4 text-positive"
                    )
                ui.button(
                    "Flash it", icon="bolt", on_click=lambda: ui.navigate.to("/")
                ).classes(theme.PRIMARY)
            else:
                with ui.row().classes("items-center gap-4 no-wrap"):
                    ui.icon("error", size="64px", color="negative")
                    ui.label(download.error).classes("text-h6 text-negative").props(
                        "data-testid=error"
                    )
                ui.button(
                    "Retry",
                    icon="refresh",
                    on_click=lambda v=download.version: start(station, v),
                ).classes(theme.PRIMARY).mark("retry")

    def refresh() -> None:
        status = station.updates.status()
        state = screen_state(status)
        if not shown or shown[0] != state:
            shown[:] = [state]
            draw(status)
        download = status.download
        if download is not None and bar:
            share = units.percent(download.done, download.total)
            bar[0].value = share / 100
            figures[0].text = f"{share} %"
            figures[1].text = progress_line(download)

    refresh()
    ui.timer(0.25, refresh)


def _idle(station: Station, status: UpdateStatus, last: DownloadStatus | None) -> None:
    if last is not None:
        ui.label(f"The download of {last.version} was cancelled.").classes("text-h6")
    latest = status.latest
    if station.client is None:
        ui.label("No portal is set up; only images on this station can be used.")
        return
    if latest is None:
        ui.label(status.error or "Check for updates in Settings to see releases.")
        return
    if latest.version in status.local:
        ui.label(f"{latest.version}, the latest release, is on this station.")
        return
    ui.label(
        f"{latest.version} is available ({units.human_size(latest.file_size)})."
    ).classes("text-h6")
    ui.button(
        f"Download {latest.version}",
        icon="download",
        on_click=lambda: start(station, latest.version),
    ).classes(theme.PRIMARY).mark("start-download")
