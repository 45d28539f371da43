"""Sizes for gloved fingers and a screen read from a step away.

Every tappable control is at least 48 by 48 CSS px, primary actions 64 px tall,
and body text 18 px; Quasar's defaults (36 px buttons, 13 px table cells) are
too small for a touch station, so they are raised here once for all screens.
"""

from __future__ import annotations

from nicegui import ui

PRIMARY = "kiosk-primary"

_CSS = """
body { font-size: 18px; line-height: 1.45; }
.q-btn { min-height: 48px; min-width: 48px; font-size: 18px; }
.q-btn.kiosk-primary { min-height: 64px; font-size: 22px; padding: 0 28px; }
.q-field__native, .q-field__label, .q-item__label, .q-select__dropdown-icon,
.q-table td, .q-table th, .q-notification__message, .q-card { font-size: 18px; }
.q-item { min-height: 48px; }
.q-table th { font-weight: 700; }
.kiosk-muted { color: #374151; }
.kiosk-verdict { font-size: 40px; font-weight: 800; letter-spacing: 0.05em; }
.kiosk-pass { background: #dcfce7; border: 4px solid #15803d; color: #14532d; }
.kiosk-fail { background: #fee2e2; border: 4px solid #b91c1c; color: #7f1d1d; }
.kiosk-banner { background: #fef9c3; border-bottom: 2px solid #a16207; }
"""


def apply() -> None:
    """Add the station's CSS to the current page."""
    ui.add_css(_CSS)
    ui.colors(primary="#1d4ed8", positive="#15803d", negative="#b91c1c")
