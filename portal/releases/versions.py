"""Release versions: `v1.2.3` or `v1.3.0-rc.1`, ordered by semantic-version rules."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

MAX_LENGTH = 64

_PATTERN = re.compile(
    r"v(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})"
    r"(?:-((?:0|[1-9]\d{0,8}|\d*[A-Za-z-][0-9A-Za-z-]*)"
    r"(?:\.(?:0|[1-9]\d{0,8}|\d*[A-Za-z-][0-9A-Za-z-]*))*))?",
    re.ASCII,
)


class InvalidVersion(ValueError):
    """The text is not a release version such as v1.2.3 or v1.3.0-rc.1."""


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: tuple[int | str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _PATTERN.fullmatch(text) if len(text) <= MAX_LENGTH else None
        if match is None:
            raise InvalidVersion(
                f"{text[:MAX_LENGTH]!r} is not a release version; "
                "use the form v1.2.3 or v1.3.0-rc.1."
            )
        major, minor, patch, pre = match.groups()
        identifiers = tuple(
            int(part) if part.isdigit() else part for part in (pre or "").split(".")
        )
        return cls(int(major), int(minor), int(patch), identifiers if pre else ())

    def __str__(self) -> str:
        text = f"v{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(str(part) for part in self.prerelease)
        return text

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._sort_key() < other._sort_key()

    def _sort_key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        # A release ranks above its own pre-releases; among pre-release
        # identifiers, numbers rank below words and compare as numbers.
        identifiers = tuple(
            (0, part, "") if isinstance(part, int) else (1, 0, part)
            for part in self.prerelease
        )
        return (
            self.major,
            self.minor,
            self.patch,
            0 if self.prerelease else 1,
            identifiers,
        )

    @property
    def image_name(self) -> str:
        return f"FlashingApp_{self}.img"


def is_valid(text: str) -> bool:
    try:
        Version.parse(text)
    except InvalidVersion:
        return False
    return True
