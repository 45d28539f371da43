"""A release manager uploads through a real browser and sees the progress bar."""

import shutil

import pytest

from portal.releases.models import Release
from tests.portal.conftest import write_image

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        shutil.which("chromium") is None, reason="Debian's chromium is not installed"
    ),
]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser_page(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop; the test's ORM calls are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS
        )
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 800})
        finally:
            browser.close()


def test_upload_shows_progress_then_the_saved_release(
    browser_page, live_server, release_manager, tmp_path
):
    image = tmp_path / "build.img"
    digest = write_image(image, 64 * 2**20)
    page = browser_page
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "rm")
    page.fill("#id_password", "rm-password-123")
    page.click("input[type=submit]")

    page.goto(f"{live_server.url}/admin/releases/release/add/")
    page.fill("#id_version", "v2.0.0")
    page.set_input_files("#id_image", str(image))
    page.click("input[name=_save]")

    status = page.wait_for_function(
        "document.querySelector('#upload-progress .upload-status')?.textContent"
    ).json_value()
    assert "Keep this page open" in status or "storing" in status
    page.wait_for_url("**/admin/releases/release/")
    assert "was added successfully" in page.inner_text(".messagelist")
    assert Release.objects.get(version="v2.0.0").sha256 == digest
