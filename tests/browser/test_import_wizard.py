"""The import wizard and the live downloads page in headless Chromium against a real
`ferry serve`: a CSV and a Slack export imported end to end through the wizard, and a
download whose bar reaches 100% from live events. Screenshots of the wizard's pages at
phone and desktop width, and no console errors."""

import re
import signal
import time

import pytest

from ferry.chat.generate import write_csv_export
from tests.api.test_import_api import csv_export
from tests.browser import test_pages
from tests.browser.test_pages import create_user, shoot, sign_in
from tests.live.test_serve import free_port, start, wait_until_up
from tests.support.importers import FIXTURES
from tests.support.remote import RemoteServer

SLACK_EXPORT = FIXTURES / "slack-export-viewer" / "testarchive.zip"

pytestmark = test_pages.pytestmark
# Chromium and a fresh page per test, with its console errors collected.
browser = test_pages.browser
page = test_pages.page


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server that may download from 127.0.0.1, slowly enough to watch a bar move."""
    data_dir = tmp_path_factory.mktemp("wizard") / "data"
    log = data_dir.parent / "serve.log"
    port = free_port()
    with log.open("w") as output:
        process = start(
            data_dir,
            port,
            "--allow-download",
            "--allow-private-networks",
            output=output,
        )
    wait_until_up(port, process)
    deadline = time.monotonic() + 10
    while not (found := re.search(r"password: (\S+)", log.read_text())):
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}", found.group(1)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=10)


def choose_importer(page, base, importer: str):
    page.goto(base + "/ui/imports")
    page.get_by_role("link", name=importer, exact=True).click()
    page.wait_for_url(re.compile(r"/ui/imports/new/"))


def wait_for_picker(page):
    page.wait_for_url(re.compile(r"/ui/imports/current$"))
    # The live panel opens the picker once the file is prepared.
    page.get_by_role("heading", name="Choose what to import").wait_for(timeout=30_000)


def slowly(body: bytes, pieces: int = 20, pause: float = 0.1):
    """A route handler that sends `body` in pieces with a pause between them."""
    size = -(-len(body) // pieces)

    def handler(h) -> None:
        h.send_head(200, [("Content-Length", str(len(body)))])
        for offset in range(0, len(body), size):
            h.wfile.write(body[offset : offset + size])
            h.wfile.flush()
            time.sleep(pause)

    return handler


def test_csv_import_through_the_wizard(page, server, tmp_path):
    base, password = server
    sign_in(page, base, "admin", password)
    page.get_by_role("link", name="Imports").click()
    assert page.get_by_role("heading", name="New import").is_visible()
    shoot(page, "import-choose")
    page.get_by_role("link", name="CSV", exact=True).click()
    shoot(page, "import-new")
    page.locator("#import-file").set_input_files(str(csv_export(tmp_path)))
    page.get_by_role("button", name="Upload", exact=True).click()
    wait_for_picker(page)
    assert page.get_by_role("checkbox", name="billy.bob").is_checked()
    shoot(page, "import-picker")
    page.get_by_role("button", name="Start import").click()
    page.get_by_role("heading", name="Summary").wait_for(timeout=30_000)
    figures = page.locator("#summary-h + dl").inner_text()
    assert re.search(r"Users created\s+2", figures), figures
    assert page.locator("#import-panel code").inner_text() == "importer_done"
    shoot(page, "import-summary")
    assert page.console_errors == []


def test_a_large_import_shows_its_step_and_counts_while_it_runs(page, server, tmp_path):
    base, password = server
    export = tmp_path / "large.zip"
    # Large enough that importing lasts seconds, so the page is seen in that phase.
    write_csv_export(export, messages=100_000, channels=3, users=20)
    sign_in(page, base, "admin", password)
    choose_importer(page, base, "CSV")
    page.locator("#import-file").set_input_files(str(export))
    page.get_by_role("button", name="Upload", exact=True).click()
    wait_for_picker(page)
    page.get_by_role("button", name="Start import").click()
    page.locator("#import-panel[data-phase=importing]").wait_for(timeout=30_000)
    assert page.get_by_role("progressbar", name="Import progress").is_visible()
    assert re.search(r"\d+ of \d+", page.locator("#import-panel dl").inner_text())
    shoot(page, "import-importing")
    page.get_by_role("heading", name="Summary").wait_for(timeout=120_000)
    figures = page.locator("#summary-h + dl").inner_text()
    assert re.search(r"Messages imported\s+100,?000", figures), figures
    assert page.console_errors == []


def test_slack_import_from_a_url_with_a_choice_of_channels(page, server):
    base, password = server
    sign_in(page, base, "admin", password)
    choose_importer(page, base, "Slack")
    with RemoteServer() as remote:
        url = remote.route("/export.zip", slowly(SLACK_EXPORT.read_bytes()))
        page.get_by_label("URL", exact=False).fill(url)
        page.get_by_role("button", name="Fetch and prepare").click()
        page.wait_for_url(re.compile(r"/ui/imports/current$"))
        if page.get_by_role("heading", name="Choose what to import").count() == 0:
            shoot(page, "import-preparing")
        wait_for_picker(page)
    page.get_by_role("button", name="Channels (2/2)", exact=True).click()
    page.get_by_role("checkbox", name="traveling-sailor").uncheck()
    page.get_by_label("Search channels by name").fill("sail")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"q=sail"))
    # The untick was kept on the server while the search changed the page.
    assert not page.get_by_role("checkbox", name="traveling-sailor").is_checked()
    assert page.get_by_role("checkbox", name="enrique").count() == 0
    shoot(page, "import-search")
    page.get_by_role("button", name="Start import").click()
    page.get_by_role("heading", name="Summary").wait_for(timeout=30_000)
    figures = page.locator("#summary-h + dl").inner_text()
    assert re.search(r"Rooms created\s+1", figures), figures
    assert re.search(r"Rooms not selected\s+1", figures), figures
    shoot(page, "import-summary-slack")
    assert page.console_errors == []


# Records every value a progress bar shows, across the reloads the page makes when a
# download starts or ends.
RECORD_BARS = """
new MutationObserver((changes) => {
  for (const change of changes) {
    if (change.target.tagName === "PROGRESS") {
      const seen = JSON.parse(sessionStorage.getItem("bars") || "[]");
      seen.push(Number(change.target.getAttribute("value")));
      sessionStorage.setItem("bars", JSON.stringify(seen));
    }
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ["value"]});
"""


def test_download_bar_reaches_100_percent_from_live_events(page, server):
    base, password = server
    page.context.add_init_script(RECORD_BARS)
    sign_in(page, base, "admin", password)
    with RemoteServer() as remote:
        url = remote.trickle("/slow.bin", pieces=24, piece=b"x" * 16384, pause=0.15)
        page.get_by_role("link", name="Downloads", exact=True).click()
        page.get_by_text("Download a URL", exact=True).click()
        page.get_by_label("URL", exact=True).fill(url)
        page.get_by_role("button", name="Start download").click()
        page.wait_for_url(re.compile(r"/ui/downloads$"))
        page.get_by_role("link", name="slow.bin").wait_for(timeout=30_000)
    seen = page.evaluate("JSON.parse(sessionStorage.getItem('bars') || '[]')")
    assert seen and max(seen) == 100, seen
    assert page.console_errors == []


def test_a_download_paused_and_resumed_from_the_page_goes_on_by_range(page, server):
    base, password = server
    sign_in(page, base, "admin", password)
    with RemoteServer() as remote:
        # 64 blocks of 64 KiB, 0.05 s apart: about three seconds to pause it in.
        url = remote.ranged("/paused.bin", 4 << 20, pause=0.05, validators=[("ETag", '"p1"')])
        page.get_by_role("link", name="Downloads", exact=True).click()
        page.get_by_text("Download a URL", exact=True).click()
        page.get_by_label("URL", exact=True).fill(url)
        page.get_by_role("button", name="Start download").click()
        page.wait_for_url(re.compile(r"/ui/downloads$"))
        # Past half way, so more than the megabyte a resume fetches again is kept.
        page.wait_for_function(
            "() => [...document.querySelectorAll('progress')].some((bar) => bar.value >= 50)",
            timeout=30_000,
        )
        page.get_by_role("button", name="Pause").click()
        page.get_by_role("button", name="Resume").wait_for(timeout=30_000)
        assert page.locator(".status", has_text="paused").count() == 1
        shoot(page, "downloads-paused")
        page.get_by_role("button", name="Resume").click()
        page.get_by_role("link", name="paused.bin").wait_for(timeout=60_000)
        asked = [r.headers.get("Range") for r in remote.requests if r.path == "/paused.bin"]
    # The whole file once, then the rest from where the pause left it.
    assert asked[0] is None and len(asked) == 2, asked
    assert asked[1].startswith("bytes=") and not asked[1].startswith("bytes=0-"), asked
    assert page.console_errors == []


def test_a_plain_user_sees_none_of_the_admins_downloads_and_forged_posts_fail(page, server):
    base, password = server
    sign_in(page, base, "admin", password)
    with RemoteServer() as remote:
        # Done before the page it lands on connects its stream: the page still hears it.
        url = remote.ranged("/admins-only.bin", 1 << 16)
        page.get_by_role("link", name="Downloads", exact=True).click()
        page.get_by_text("Download a URL", exact=True).click()
        page.get_by_label("URL", exact=True).fill(url)
        page.get_by_role("button", name="Start download").click()
        page.get_by_role("link", name="admins-only.bin").wait_for(timeout=30_000)
    create_user(page, base, "carol", "another-unusual-passphrase-7")
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, base, "carol", "another-unusual-passphrase-7")
    page.goto(base + "/ui/downloads")
    assert "admins-only.bin" not in page.content()
    # A post without the session's CSRF token, as another site's page would send it.
    status = page.evaluate(
        """async () => (await fetch('/ui/edit/mkdir', {method: 'POST',
             headers: {'Content-Type': 'application/x-www-form-urlencoded'},
             body: 'name=forged'})).status"""
    )
    assert status == 403
    assert [e for e in page.console_errors if "status of 403" not in e] == []
