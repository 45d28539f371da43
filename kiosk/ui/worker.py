"""Blocking service calls from the screens, always in a worker thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar, cast

from nicegui import run

P = ParamSpec("P")
T = TypeVar("T")


async def blocking(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Await `func` run in a thread, so the event loop keeps drawing."""
    # io_bound answers None only while the app shuts down, when nobody reads it.
    return cast(T, await run.io_bound(func, *args, **kwargs))
