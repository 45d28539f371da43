"""The station app as a line worker meets it: a real server, Chromium, touch.

`python -m kiosk ui` runs as a subprocess on 127.0.0.1 with its own data
directory. Releases come from a release server whose image store is throttled
so the download is seen in progress; drives are loop devices (root only),
identified by a stand-in smartctl replaying a recorded Samsung T7. One drive
is too small for the image and is shown as not offered, with the reason; one
claims more than it holds (its file lives on a tmpfs too small for it, as a
counterfeit drive does), so its flash really fails.

Screenshots go to $SCREENSHOTS_DIR (default: the test's tmp_path);
`make screenshots` writes them to docs/screenshots/.
"""

import csv
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.kiosk.drive_fixtures import install_smartctl_stand_in, recording
from tests.kiosk.faulty_server import FaultyServer
from tests.kiosk.ui.conftest import Catalogue, ReleaseServer

pytestmark = pytest.mark.skipif(
    not Path("/usr/bin/chromium").exists(), reason="Debian's chromium is not installed"
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IMAGE = os.urandom(24 * 2**20 + 4096)
TIMEOUT = 30
MIN_TAP = 48


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(url: str, app: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        assert app.poll() is None, "the station app exited at start"
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the station app did not answer at {url}")


@pytest.fixture
def screenshots(tmp_path) -> Path:
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def release_server() -> Iterator[ReleaseServer]:
    with (
        FaultyServer(IMAGE) as image,
        ReleaseServer(Catalogue("v1.2.3", image)) as server,
    ):
        image.plan.rate = 3 * 2**20  # per connection; the bar is seen moving
        yield server


@pytest.fixture
def drives(tmp_path) -> Iterator[tuple[str, str, str]]:
    """Loop drives: a good one, a too small one, and one that lies about its size."""
    from tests.kiosk.drive_fixtures import loop_target, tiny_tmpfs

    with ExitStack() as stack:
        large = stack.enter_context(loop_target(tmp_path, 32 * 2**20, "large"))
        small = stack.enter_context(loop_target(tmp_path, 8 * 2**20, "small"))
        shelf = stack.enter_context(tiny_tmpfs(tmp_path / "fake", 12 * 2**20))
        fake = stack.enter_context(loop_target(shelf, 32 * 2**20, "fake"))
        yield large, small, fake


@pytest.fixture
def station_url(tmp_path, monkeypatch, release_server, drives) -> Iterator[str]:
    """The station app serving on a free port; stopped and removed afterwards."""
    install_smartctl_stand_in(
        tmp_path / "smartctl", monkeypatch, output=recording("samsung_t7_asmedia.json")
    )
    port = free_port()
    # NiceGUI takes PYTEST_CURRENT_TEST to mean its own test harness runs it.
    inherited = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env = {
        **inherited,
        "KIOSK_API_BASE_URL": release_server.url,
        "KIOSK_STATION_TOKEN": "t0ken",
        "KIOSK_STATION_NAME": "Line 1 / Station 3",
        "KIOSK_CHECK_INTERVAL": "manual",
        "KIOSK_ALLOW_LOOP_TARGETS": "1",
        "PYTHONPATH": str(Path(__file__).parents[2]),
    }
    data = tmp_path / "station"
    command = [sys.executable, "-m", "kiosk", "--data-dir", str(data), "-q"]
    app = subprocess.Popen([*command, "ui", "--port", str(port)], env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, app)
        yield url
    finally:
        app.terminate()
        try:
            app.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait(TIMEOUT)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def page(station_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(
                viewport={"width": 1280, "height": 800},
                has_touch=True,
                base_url=station_url,
            )
            context.set_default_timeout(TIMEOUT * 1000)
            yield context.new_page()
        finally:
            browser.close()


def too_small_to_tap(page) -> list[str]:
    """Every visible tappable control under 48 by 48 CSS px, named."""
    found = page.eval_on_selector_all(
        "button, a[href], [role=button], .q-field, input:not(.q-field input)",
        """(nodes) => nodes
            .filter((n) => n.offsetParent !== null)
            .map((n) => {
                const box = n.getBoundingClientRect();
                const label = (n.innerText || n.getAttribute('aria-label') ||
                               n.tagName).trim().slice(0, 40);
                return [label, box.width, box.height];
            })""",
    )
    return [
        f"{label} ({width:.0f}x{height:.0f})"
        for label, width, height in found
        if width < MIN_TAP or height < MIN_TAP
    ]


def primary_too_low(page) -> list[str]:
    """Every visible primary action under 64 CSS px tall, named."""
    found = page.eval_on_selector_all(
        ".kiosk-primary",
        """(nodes) => nodes
            .filter((n) => n.offsetParent !== null)
            .map((n) => [n.innerText.trim(), n.getBoundingClientRect().height])""",
    )
    return [f"{label} ({height:.0f})" for label, height in found if height < 64]


def tap(page, name: str) -> None:
    page.get_by_role("button", name=name).first.tap()


def test_check_download_flash_by_touch(page, drives, screenshots):
    large, small, fake = drives
    page.goto("/")
    page.get_by_text("Line 1 / Station 3").wait_for()

    tap(page, "Settings")
    tap(page, "Check for updates now")
    page.get_by_text("New version v1.2.3 available").wait_for()
    page.get_by_text("Checked at").wait_for()
    page.screenshot(path=screenshots / "settings.png", full_page=True)

    tap(page, "Flash")
    page.get_by_text("Plug in a drive").or_(page.get_by_text("Loop")).first.wait_for()
    page.screenshot(path=screenshots / "header-banner.png")

    tap(page, "Get Latest")
    page.get_by_text("Downloading v1.2.3").wait_for()
    page.get_by_text(re.compile(r"^[1-9][0-9]? %$")).wait_for()
    page.screenshot(path=screenshots / "download-progress.png")
    page.get_by_text("v1.2.3 is ready — verified").wait_for(timeout=120_000)
    assert not page.get_by_text("New version v1.2.3 available").is_visible()
    page.screenshot(path=screenshots / "download-done.png")

    tap(page, "Flash it")
    page.get_by_text("v1.2.3 — verified").wait_for()
    small_card = page.locator(f"[data-device='{small}']")
    small_card.get_by_text("Too small for v1.2.3").wait_for()
    assert small_card.get_by_role("button", name="Flash").count() == 0
    for device in (large, fake):
        card = page.locator(f"[data-device='{device}']")
        card.get_by_role("button", name="Flash").tap()
        question = page.get_by_role("dialog")
        question.get_by_text("serial S6WBNS0T812345A").wait_for()
        question.get_by_role("button", name="Flash 1 drive(s)").tap()
        question.wait_for(state="hidden")

    large_card = page.locator(f"[data-device='{large}']")
    fake_card = page.locator(f"[data-device='{fake}']")
    large_card.get_by_text("PASS", exact=True).wait_for(timeout=120_000)
    fake_card.get_by_text("FAIL", exact=True).wait_for(timeout=120_000)
    assert "counterfeit or failing" in fake_card.inner_text()
    assert "Safe to remove" in large_card.inner_text()
    assert "Not offered" in small_card.inner_text()
    page.screenshot(path=screenshots / "flash-pass-fail.png", full_page=True)

    tap(page, "History")
    page.get_by_text("2 flash record(s), newest first").wait_for()
    page.screenshot(path=screenshots / "history.png", full_page=True)

    with page.expect_download() as caught:
        tap(page, "Export CSV")
    download = caught.value
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
    assert download.suggested_filename.startswith("flash_records_Line-1-Station-3_")
    assert sorted((r["status"], r["serial"]) for r in rows) == [
        ("failed", "S6WBNS0T812345A"),
        ("passed", "S6WBNS0T812345A"),
    ]


@pytest.mark.parametrize("width, height", [(1280, 800), (1920, 1080)])
def test_every_control_is_big_enough_to_tap(page, drives, width, height):
    page.set_viewport_size({"width": width, "height": height})
    page.goto("/")
    page.get_by_text("Line 1 / Station 3").wait_for()
    for screen, ready in (
        ("Flash", "Image to write"),
        ("Download", "Download"),
        ("History", "Export CSV"),
        ("Settings", "Check for updates now"),
    ):
        tap(page, screen)
        page.get_by_text(ready).first.wait_for()
        page.wait_for_timeout(300)
        assert too_small_to_tap(page) == [], screen
        assert primary_too_low(page) == [], screen
        if screen == "Flash":  # Flash all and a Flash per ready drive
            assert page.locator(".kiosk-primary:visible").count() >= 3
        body = page.evaluate("getComputedStyle(document.body).fontSize")
        assert float(body.removesuffix("px")) >= 18
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0, f"{screen} scrolls sideways at {width}x{height}"
