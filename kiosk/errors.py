"""The kiosk's one exception tree; every error a person can see lives here.

    KioskError                 base; `message` is one plain sentence with what to do
    ├── ConfigError            the settings file or an environment override is invalid
    ├── PortalError            the portal answered with an error or a malformed body
    │   └── PortalOffline      the portal could not be reached (network, DNS, timeout)
    ├── StorageError           a folder is missing, read-only or too full
    ├── LibraryError           an image in recommended/ is missing or corrupt
    ├── DownloadError          a download failed for a reason other than the above
    │   ├── DownloadCancelled  someone cancelled it; the partial file was removed
    │   ├── DownloadStopped    the station stopped; the partial file is kept
    │   └── CorruptedDownload  size or SHA-256 did not match; nothing was kept
    └── DriveError             a drive cannot be used as a target or identified

Services raise these; only the UI layer and the command line turn them into
notifications or exit codes. Details for operators go to the log, not here.
"""

from __future__ import annotations


class KioskError(Exception):
    """An error with a sentence a line worker or operator can act on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(KioskError):
    pass


class PortalError(KioskError):
    def __init__(
        self, message: str, *, code: str = "", status: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class PortalOffline(PortalError):
    pass


class StorageError(KioskError):
    pass


class LibraryError(KioskError):
    pass


class DownloadError(KioskError):
    pass


class DownloadCancelled(DownloadError):
    pass


class DownloadStopped(DownloadError):
    pass


class CorruptedDownload(DownloadError):
    pass


class DriveError(KioskError):
    pass
