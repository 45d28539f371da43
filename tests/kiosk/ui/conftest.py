"""The screens in NiceGUI's simulated browser, over real services and files.

Each test builds its own Station in its own data directory and runs the app
through `user_simulation`, which resets NiceGUI's globals around the test, so
nothing leaks between tests or into other test folders. Tests are async and
run by anyio's pytest plugin on asyncio.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from nicegui.testing.user import User
from nicegui.testing.user_simulation import user_simulation

from kiosk import config
from kiosk.flashing import Flasher
from kiosk.station import Station
from kiosk.ui import app
from tests.kiosk.faulty_server import FaultyServer

HOST = "127.0.0.1"
RELEASE_IMAGE = random.Random(5).randbytes(6 * 1024 * 1024 + 4321)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_station(data_dir: Path, flasher: Flasher | None = None, **env: str) -> Station:
    """A station in `data_dir`; `env` holds KIOSK_* overrides without the prefix."""
    environ = {"KIOSK_STATION_NAME": "Station 3", "KIOSK_STATION_TOKEN": "t0ken"}
    environ |= {f"KIOSK_{key.upper()}": value for key, value in env.items()}
    settings = config.load(data_dir, environ=environ)
    return Station(
        settings,
        flasher=flasher,
        drive_poll_interval=0.2,
        use_udev=False,
        outbox_period=0.5,
        portal_retries=1,
    )


@asynccontextmanager
async def screens(station: Station) -> AsyncIterator[User]:
    """Start the station and open a simulated browser on its app."""
    station.start()
    try:
        async with user_simulation(root=app.build(station)) as user:
            yield user
    finally:
        station.stop()


@dataclass
class Catalogue:
    """What the release server offers: one release, its bytes and its state."""

    version: str
    image: FaultyServer
    online: bool = True
    records: list[dict[str, object]] = field(default_factory=list)

    def release(self) -> dict[str, object]:
        return {
            "version": self.version,
            "release_date": "2026-11-30",
            "file_size": len(self.image.data),
            "checksum": "sha256:" + hashlib.sha256(self.image.data).hexdigest(),
            "description": "Line B fixes",
        }


class ReleaseServer:
    """The station's side of the portal API on 127.0.0.1, serving one release.

    The image itself comes from a FaultyServer, which can throttle, corrupt
    or drop it on cue; `online = False` makes every API call fail with 503.
    """

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self._httpd = ThreadingHTTPServer((HOST, 0), self._handler())
        self._httpd.daemon_threads = True
        self.url = f"http://{HOST}:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}
        )

    def __enter__(self) -> ReleaseServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(10)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        catalogue = self.catalogue

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/api/flash-images/latest"):
                    self._send(200, catalogue.release())
                elif self.path.startswith("/api/flash-images/"):
                    self._send(200, [catalogue.release()])
                else:
                    self._send(404, {"code": "not_found", "detail": "Not found."})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path == "/api/flash-images/download":
                    grant = {
                        "download_url": catalogue.image.url(),
                        "expires_at": "2099-01-01T00:00:00Z",
                    }
                    self._send(200, grant)
                elif self.path == "/api/flash-records/":
                    catalogue.records.extend(body["records"])
                    results = [
                        {"id": r["id"], "accepted": True} for r in body["records"]
                    ]
                    self._send(200, {"results": results})
                else:
                    self._send(404, {"code": "not_found", "detail": "Not found."})

            def _send(self, status: int, body: object) -> None:
                if not catalogue.online:
                    status, body = 503, {"code": "unavailable", "detail": "Down."}
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def release_server() -> Iterator[ReleaseServer]:
    """v1.2.3 on a release server and an image store, both on 127.0.0.1."""
    with (
        FaultyServer(RELEASE_IMAGE) as image,
        ReleaseServer(Catalogue("v1.2.3", image)) as server,
    ):
        yield server
