"""Sizes, speeds and times as a person reads them on the screens."""

from __future__ import annotations

from kiosk.library import human_size

__all__ = ["duration", "human_size", "percent", "speed"]


def speed(bytes_per_second: float) -> str:
    """`123.4 MB/s` (decimal units, as disks are sold)."""
    return f"{bytes_per_second / 1e6:.1f} MB/s"


def duration(seconds: float | None) -> str:
    """`1 h 05 min`, `3 min 20 s`, `45 s`; `unknown` when not known."""
    if seconds is None:
        return "unknown"
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def percent(done: int, total: int) -> int:
    """Whole percent done, 0 when the total is not known yet."""
    return int(done * 100 / total) if total > 0 else 0
