"""The app: one root page with the header and a sub page per screen.

Pages are built by a function from a Station rather than registered at import
time, so tests can build a fresh app (and station) for every test.
"""

from __future__ import annotations

from collections.abc import Callable

from nicegui import app, ui

from kiosk.station import Station
from kiosk.ui import download, flash, header, history, settings, theme

TITLE = "Flashing station"


def build(station: Station) -> Callable[[], None]:
    """The root page function for `ui.run`."""

    def root() -> None:
        theme.apply()
        header.render(station)
        with ui.column().classes("w-full q-pa-md gap-4"):
            ui.sub_pages(
                {
                    "/": lambda: flash.render(station),
                    "/download": lambda: download.render(station),
                    "/history": lambda: history.render(station),
                    "/settings": lambda: settings.render(station),
                }
            ).classes("w-full")

    return root


def run(station: Station, *, port: int, host: str = "127.0.0.1") -> None:
    """Serve the screens until the process is stopped; stops the station after."""
    app.on_shutdown(station.stop)
    ui.run(
        build(station),
        host=host,
        port=port,
        title=TITLE,
        reload=False,
        show=False,
        show_welcome_message=False,
        favicon="⚡",
    )
