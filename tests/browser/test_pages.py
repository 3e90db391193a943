"""The web page in headless Chromium against a real `ferry serve`: sign in, browse and
download, the admin page only for admins, and screenshots of each page at phone and
desktop width with no console errors."""

import re
import signal
import time
from pathlib import Path

import pytest

from tests.live.test_serve import free_port, start, wait_until_up

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SIZES = {"phone": (390, 844), "desktop": (1440, 900)}
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("web") / "data"
    log = data_dir.parent / "serve.log"
    port = free_port()
    with log.open("w") as output:
        process = start(data_dir, port, output=output)
    wait_until_up(port, process)
    deadline = time.monotonic() + 10
    while not (found := re.search(r"password: (\S+)", log.read_text())):
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    files = data_dir / "files"
    (files / "reports").mkdir(parents=True, exist_ok=True)
    (files / "reports" / "q3.csv").write_text("quarter,total\nq3,42\n")
    (files / "readme.txt").write_text("hello from ferry\n")
    yield f"http://127.0.0.1:{port}", found.group(1)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.console_errors = []
    page.on(
        "console",
        lambda m: m.type == "error" and page.console_errors.append(f"{m.text} {m.location}"),
    )
    page.on("pageerror", lambda e: page.console_errors.append(str(e)))
    yield page
    context.close()


def sign_in(page, base, username, password):
    page.goto(base + "/")
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/ui/files/$"))


def create_user(page, base, username, password):
    """Through the admin page, as an admin."""
    page.goto(base + "/ui/admin")
    page.get_by_text("Create a user").click()
    page.locator("#new-username").fill(username)
    page.locator("#new-email").fill(f"{username}@example.test")
    page.locator("#new-password").fill(password)
    page.get_by_role("button", name="Create").click()
    page.get_by_role("cell", name=username, exact=True).wait_for()


def shoot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for size, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{size}.png"), full_page=True)


def test_admin_signs_in_browses_downloads_and_every_page_renders_cleanly(page, server):
    base, password = server
    page.goto(base + "/")
    shoot(page, "login")
    sign_in(page, base, "admin", password)
    page.get_by_role("link", name="reports/").click()
    page.wait_for_url(re.compile(r"/ui/files/reports/$"))
    assert page.get_by_role("navigation", name="Breadcrumbs").inner_text() == "Files / reports"
    with page.expect_download() as download:
        page.get_by_role("link", name="Download", exact=True).click()
    assert Path(download.value.path()).read_text() == "quarter,total\nq3,42\n"
    page.goto(base + "/ui/files/")
    shoot(page, "files")
    page.get_by_role("link", name="Downloads", exact=True).click()
    page.get_by_role("heading", name="History").wait_for()  # the click's page has loaded
    shoot(page, "downloads")
    page.get_by_role("link", name="Imports").click()
    page.get_by_role("heading", name="Recent operations").wait_for()  # the click's page has loaded
    shoot(page, "imports")
    page.get_by_role("link", name="Admin").click()
    page.get_by_role("heading", name="Users (1)").wait_for()  # the click's page has loaded
    shoot(page, "admin")
    assert page.console_errors == []


def test_plain_user_has_no_admin_page(page, server):
    base, password = server
    sign_in(page, base, "admin", password)
    create_user(page, base, "bob", "a-long-unusual-passphrase-42")
    assert page.get_by_role("cell", name="bob", exact=True).is_visible()
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, base, "bob", "a-long-unusual-passphrase-42")
    assert page.get_by_role("link", name="Admin").count() == 0
    page.goto(base + "/ui/admin")
    assert "error-unauthorized" in page.get_by_role("alert").inner_text()


def test_admin_creates_a_folder_uploads_into_it_and_deletes_the_file(page, server):
    base, password = server
    sign_in(page, base, "admin", password)
    page.get_by_text("New folder").click()
    page.get_by_label("Folder name").fill("inbox")
    page.get_by_role("button", name="Create folder").click()
    page.wait_for_url(re.compile(r"/ui/files/inbox/$"))
    assert page.get_by_text("This folder is empty.").is_visible()
    page.get_by_label("Files", exact=True).set_input_files(
        {"name": "hello.txt", "mimeType": "text/plain", "buffer": b"hi from the browser\n"}
    )
    page.get_by_role("button", name="Upload").click()
    page.get_by_role("link", name="hello.txt", exact=True).wait_for()
    assert page.get_by_text("This folder is empty.").count() == 0
    shoot(page, "upload")
    # The same name again is refused, and the page says why, in place.
    page.get_by_label("Files", exact=True).set_input_files(
        {"name": "hello.txt", "mimeType": "text/plain", "buffer": b"replaced?\n"}
    )
    page.get_by_role("button", name="Upload").click()
    status = page.get_by_role("status")
    status.filter(has_text="already exists").wait_for()
    assert status.inner_text().startswith("409 ")
    assert page.get_by_role("link", name="hello.txt", exact=True).count() == 1
    # Chromium logs the refused request itself as a console error; nothing else may.
    assert [e for e in page.console_errors if "status of 409" not in e] == []
    page.console_errors.clear()
    page.get_by_role("link", name="Delete hello.txt").click()
    page.wait_for_url(re.compile(r"/ui/edit/delete\?path=inbox(/|%2F)hello\.txt$"))
    page.get_by_role("button", name="Delete").click()
    page.wait_for_url(re.compile(r"/ui/files/inbox/$"))
    assert page.get_by_text("This folder is empty.").is_visible()
    assert page.console_errors == []


def test_a_large_upload_cut_off_midway_resumes_from_what_arrived(page, server):
    base, password = server
    sign_in(page, base, "admin", password)
    data = bytes(range(256)) * (20 * 4096)  # 20 MiB: sent in three chunks
    chunks = []

    def cut_the_second_chunk(route):
        chunks.append(route.request.url)
        if len(chunks) == 2:
            route.abort()
        else:
            route.continue_()

    page.route("**/ui/edit/upload-chunk?*", cut_the_second_chunk)
    page.get_by_label("Files", exact=True).set_input_files(
        {"name": "big.bin", "mimeType": "application/octet-stream", "buffer": data}
    )
    page.get_by_role("button", name="Upload").click()
    page.get_by_role("status").filter(has_text="was interrupted at").wait_for()
    assert page.get_by_role("link", name="big.bin", exact=True).count() == 0
    page.get_by_role("button", name="Resume").click()
    link = page.get_by_role("link", name="big.bin", exact=True)
    link.wait_for()
    # Resumed where the first chunk ended (the second never arrived), not at zero.
    offsets = [re.search(r"offset=(\d+)", url).group(1) for url in chunks]
    assert offsets == ["0", "8388608", "8388608", "16777216"]
    stored = page.request.get(base + link.get_attribute("href"))
    assert stored.ok and stored.body() == data
    assert [e for e in page.console_errors if "ERR_FAILED" not in e] == []
