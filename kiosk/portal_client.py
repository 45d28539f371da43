"""The portal's HTTP API as the station uses it: latest release, download URLs.

Every answer is checked against the documented shape before anything trusts
it: a version that does not parse would otherwise become a file name. Being
offline is a normal state: the client remembers since when the portal has been
unreachable so the UI can say so while local images keep working.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx

from kiosk import __version__
from kiosk.errors import PortalError, PortalOffline
from kiosk.versions import InvalidVersion, Version

__all__ = ["DownloadGrant", "PortalClient", "RecordAnswer", "Release"]

log = logging.getLogger(__name__)

MAX_FILE_SIZE = 1 << 40  # 1 TiB; anything larger is a broken answer
_RELEASE_FIELDS = {"version", "release_date", "file_size", "checksum", "description"}
_CHECKSUM = re.compile(r"sha256:([0-9a-f]{64})")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Statuses worth another try: the portal or its proxy is busy or restarting.
_RETRY_STATUSES = {429, 500, 502, 503, 504}
# A proxy answering these means the portal itself cannot be reached.
_OFFLINE_STATUSES = {502, 503, 504}
_LOG_BODY = 2000


@dataclass(frozen=True)
class Release:
    """A published release as the portal describes it."""

    version: Version
    release_date: date
    file_size: int
    sha256: str
    description: str


class RecordAnswer(NamedTuple):
    """The portal's word on one uploaded flash record."""

    id: str
    accepted: bool
    detail: str


class DownloadGrant(NamedTuple):
    """A presigned, time-limited URL of one image."""

    url: str
    expires_at: datetime


def _now() -> datetime:
    return datetime.now().astimezone()


class PortalClient:
    """A station's client of the portal API; use as a context manager or close()."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 15.0,
        retries: int = 4,
        backoff: float = 0.5,
        max_delay: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = _now,
        jitter: Callable[[], float] = random.random,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.offline_since: datetime | None = None
        self.offline_reason = ""
        self._retries = retries
        self._backoff = backoff
        self._max_delay = max_delay
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={
                # No token, no header: the portal then says plainly who it wants.
                **({"Authorization": f"Bearer {token}"} if token else {}),
                "User-Agent": f"flashstation-kiosk/{__version__}",
                "X-Station-App-Version": __version__,
                "Accept": "application/json",
            },
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
            follow_redirects=False,
        )

    def __enter__(self) -> PortalClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def offline(self) -> bool:
        return self.offline_since is not None

    def offline_message(self) -> str:
        """'Portal unreachable since 10:42 (…)' while offline, else ''."""
        if self.offline_since is None:
            return ""
        return (
            f"Portal unreachable since {self.offline_since:%H:%M} "
            f"({self.offline_reason}); images on this station can still be "
            "flashed. Check the network or api_base_url in the settings."
        )

    def latest(self, holding: Sequence[Version] = ()) -> Release | None:
        """The newest published release, or None when none is published yet.

        `holding` (the local versions) goes along for the portal's station list.
        """
        headers = {"X-Station-Images": ",".join(str(v) for v in holding)}
        response = self._request("GET", "/api/flash-images/latest", headers=headers)
        if response.status_code == 404 and _code(response) == "no_published_release":
            log.info("portal has no published release yet")
            return None
        self._raise_for_error(response)
        return _release(_json(response), response)

    def releases(self) -> list[Release]:
        """All published releases, newest first."""
        response = self._request("GET", "/api/flash-images/")
        self._raise_for_error(response)
        body = _json(response)
        if not isinstance(body, list):
            raise _malformed(response, "the release list is not a list")
        return sorted(
            (_release(item, response) for item in body),
            key=lambda release: release.version,
            reverse=True,
        )

    def release(self, version: Version) -> Release:
        """The published release of `version`."""
        for release in self.releases():
            if release.version == version:
                return release
        raise PortalError(
            f"The portal has no published release {version}; "
            "run `check` to see the latest one.",
            code="unknown_version",
            status=404,
        )

    def download_url(self, version: Version) -> DownloadGrant:
        """A fresh presigned URL for the image of `version`."""
        response = self._request(
            "POST", "/api/flash-images/download", json={"version": str(version)}
        )
        if response.status_code == 404 and _code(response) == "unknown_version":
            raise PortalError(
                f"The portal no longer offers {version}; it may have been "
                "withdrawn. Run `check` to see the latest release.",
                code="unknown_version",
                status=404,
            )
        self._raise_for_error(response)
        return _grant(_json(response), response)

    def send_flash_records(self, records: list[dict[str, Any]]) -> list[RecordAnswer]:
        """Upload a batch; the portal answers each record on its own.

        Safe to repeat: records are idempotent by id, so a batch whose answer
        was lost is simply sent again.
        """
        response = self._request(
            "POST", "/api/flash-records/", json={"records": records}
        )
        self._raise_for_error(response)
        body = _json(response)
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list) or len(results) != len(records):
            raise _malformed(response, "the answer does not list every record")
        return [_record_answer(item, response) for item in results]

    def _request(
        self,
        method: str,
        path: str,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        attempt = 0
        while True:
            log.info("portal %s %s (attempt %d)", method, path, attempt + 1)
            try:
                response = self._http.request(method, path, json=json, headers=headers)
            except httpx.TransportError as exc:
                if attempt >= self._retries:
                    raise self._went_offline(exc) from exc
                delay, problem = self._delay(attempt, None), repr(exc)
            else:
                if response.status_code not in _RETRY_STATUSES:
                    self._back_online()
                    return response
                delay = self._delay(attempt, response.headers.get("Retry-After"))
                if attempt >= self._retries or delay > self._max_delay:
                    return response
                problem = f"HTTP {response.status_code}"
            log.warning(
                "portal %s %s failed (%s); retrying in %.1f s",
                method,
                path,
                problem,
                delay,
            )
            self._sleep(delay)
            attempt += 1

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        """Seconds to wait: the server's Retry-After, else backoff with jitter."""
        if retry_after is not None:
            wanted = _seconds(retry_after, self._clock())
            if wanted is not None:
                return wanted
        ceiling = min(self._max_delay, self._backoff * 2.0**attempt)
        return ceiling * (0.5 + self._jitter() / 2)

    def _went_offline(self, exc: Exception) -> PortalOffline:
        if self.offline_since is None:
            self.offline_since = self._clock()
            log.warning("portal %s unreachable: %r", self.base_url, exc)
        self.offline_reason = _reason(exc)
        return PortalOffline(self.offline_message(), code="offline")

    def _back_online(self) -> None:
        if self.offline_since is not None:
            log.info("portal %s reachable again", self.base_url)
        self.offline_since = None
        self.offline_reason = ""

    def _raise_for_error(self, response: httpx.Response) -> None:
        status = response.status_code
        if status == 200:
            return
        code, detail = _code(response), _detail(response)
        log.error(
            "portal %s %s answered %s code=%s body=%s",
            response.request.method,
            response.request.url.path,
            status,
            code,
            response.text[:_LOG_BODY],
        )
        if status in _OFFLINE_STATUSES:
            if self.offline_since is None:
                self.offline_since = self._clock()
            self.offline_reason = f"HTTP {status}"
            raise PortalOffline(self.offline_message(), code=code, status=status)
        if status == 401:
            message = (
                "The portal refused this station's token; ask an administrator "
                "for a new token and set station_token."
            )
        elif status == 429:
            message = "The portal is busy; try again in a few minutes."
        elif status >= 500:
            message = (
                f"The portal failed with an internal error (HTTP {status}); "
                "try again later or tell the portal's administrator."
            )
        else:
            said = f": {detail}" if detail else ""
            message = f"The portal refused the request (HTTP {status}{said})."
        raise PortalError(message, code=code, status=status)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise _malformed(response, "the answer is not JSON") from None


def _code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else ""


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail[:300] if isinstance(detail, str) else ""


def _malformed(response: httpx.Response, problem: str) -> PortalError:
    log.error(
        "malformed answer from %s %s: %s; body=%s",
        response.request.method,
        response.request.url.path,
        problem,
        response.text[:_LOG_BODY],
    )
    return PortalError(
        f"The portal sent an answer this station cannot use ({problem}); "
        "tell the portal's administrator.",
        code="malformed_answer",
        status=response.status_code,
    )


def _release(body: Any, response: httpx.Response) -> Release:
    if not isinstance(body, dict) or set(body) != _RELEASE_FIELDS:
        raise _malformed(response, "a release does not have the documented fields")
    try:
        version = Version.parse(body["version"]) if _is_str(body["version"]) else None
    except InvalidVersion:
        version = None
    if version is None:
        raise _malformed(response, "the version is not a release version")
    date_text = body["release_date"]
    if not _is_str(date_text) or _DATE.fullmatch(date_text) is None:
        raise _malformed(response, "the release date is not a date")
    try:
        release_date = date.fromisoformat(date_text)
    except ValueError:
        raise _malformed(response, "the release date is not a date") from None
    size = body["file_size"]
    if type(size) is not int or not 0 < size <= MAX_FILE_SIZE:
        raise _malformed(response, f"the file size {size!r} is impossible")
    checksum = body["checksum"]
    found = _CHECKSUM.fullmatch(checksum) if _is_str(checksum) else None
    if found is None:
        raise _malformed(response, "the checksum is not sha256:<64 hex digits>")
    if not _is_str(body["description"]):
        raise _malformed(response, "the description is not text")
    return Release(version, release_date, size, found.group(1), body["description"])


def _grant(body: Any, response: httpx.Response) -> DownloadGrant:
    if not isinstance(body, dict) or set(body) != {"download_url", "expires_at"}:
        raise _malformed(response, "the download grant has unexpected fields")
    url, expires = body["download_url"], body["expires_at"]
    if not _is_str(url) or urlsplit(url).scheme not in ("http", "https"):
        raise _malformed(response, "the download URL is not an http(s) address")
    try:
        expires_at = datetime.fromisoformat(expires) if _is_str(expires) else None
    except ValueError:
        expires_at = None
    if expires_at is None or expires_at.tzinfo is None:
        raise _malformed(response, "the expiry is not a time with a zone")
    return DownloadGrant(url, expires_at)


def _record_answer(item: Any, response: httpx.Response) -> RecordAnswer:
    if not isinstance(item, dict) or not isinstance(item.get("accepted"), bool):
        raise _malformed(response, "a record's answer has no accepted flag")
    detail = item.get("detail", "") if not item["accepted"] else ""
    return RecordAnswer(str(item.get("id", "")), item["accepted"], str(detail))


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _seconds(retry_after: str, now: datetime) -> float | None:
    """Retry-After as seconds from now; it is either seconds or an HTTP date."""
    text = retry_after.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _reason(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or no route"
    return "connection failed"
