"""Release versions (`v1.2.3`, `v1.3.0-rc.1`), their order and image file names.

Only a parsed Version can name a file, so text from the portal or the command
line that is not a version never becomes a path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MAX_LENGTH", "InvalidVersion", "Version", "from_image_name"]

MAX_LENGTH = 64
IMAGE_PREFIX = "FlashingApp_"
IMAGE_SUFFIX = ".img"

_NUMBER = r"(?:0|[1-9][0-9]{0,8})"
_IDENTIFIER = rf"(?:{_NUMBER}|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_SYNTAX = re.compile(
    rf"v({_NUMBER})\.({_NUMBER})\.({_NUMBER})(?:-({_IDENTIFIER}(?:\.{_IDENTIFIER})*))?"
)


class InvalidVersion(ValueError):
    """The text is not a release version such as v1.2.3 or v1.3.0-rc.1."""


@dataclass(frozen=True, order=True)
class Version:
    """A release version; compares by precedence, prints as `v1.2.3`."""

    _key: tuple[object, ...]
    text: str

    @classmethod
    def parse(cls, text: str) -> Version:
        found = _SYNTAX.fullmatch(text) if len(text) <= MAX_LENGTH else None
        if found is None:
            raise InvalidVersion(
                f"{text[:MAX_LENGTH]!r} is not a release version; "
                "use the form v1.2.3 or v1.3.0-rc.1."
            )
        major, minor, patch, pre = found.groups()
        return cls(_precedence(int(major), int(minor), int(patch), pre), text)

    @property
    def is_prerelease(self) -> bool:
        return "-" in self.text

    @property
    def image_name(self) -> str:
        return f"{IMAGE_PREFIX}{self.text}{IMAGE_SUFFIX}"

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Version({self.text!r})"


def _precedence(
    major: int, minor: int, patch: int, pre: str | None
) -> tuple[object, ...]:
    # A release ranks above its own pre-releases. Among pre-release
    # identifiers numbers rank below words, and a shorter list ranks first.
    if pre is None:
        return (major, minor, patch, 1, ())
    identifiers = tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in pre.split(".")
    )
    return (major, minor, patch, 0, identifiers)


def from_image_name(name: str) -> Version | None:
    """The version an image file name stands for, or None for any other name."""
    if not (name.startswith(IMAGE_PREFIX) and name.endswith(IMAGE_SUFFIX)):
        return None
    try:
        version = Version.parse(name[len(IMAGE_PREFIX) : -len(IMAGE_SUFFIX)])
    except InvalidVersion:
        return None
    return version if version.image_name == name else None
