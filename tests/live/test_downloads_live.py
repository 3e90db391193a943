"""Downloads in a real `ferry serve`: a kill -9 and a SIGTERM in the middle of transfers."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from storage.downloads import DownloadRepository
from storage.store import Store
from tests.live.test_serve import free_port, start, wait_until_up
from tests.support.remote import RemoteServer, pattern_bytes, wait_until

pytestmark = pytest.mark.live
pytest_plugins = ("tests.support.download_fixtures",)

ADMIN = {"FERRY_ADMIN_USERNAME": "root", "FERRY_ADMIN_PASSWORD": "live-downloads-pw-1"}
FLAGS = ("--allow-download", "--allow-private-networks")
PART_FILE = re.compile(r"\..*\.[0-9a-f]+\.part")
SLOW_COUNT = 3


class Ferry:
    """One `ferry serve` run over `data_dir`, logged in as the admin; `extra` flags and
    `env` variables besides the usual ones."""

    def __init__(self, data_dir: Path, log: Path, *extra: str, env: dict | None = None):
        self.port = free_port()
        self.log = log.open("a")
        self.process = start(
            data_dir, self.port, *FLAGS, *extra, env={**ADMIN, **(env or {})}, output=self.log
        )
        wait_until_up(self.port, self.process)
        self.base = f"http://127.0.0.1:{self.port}"
        login = requests.post(
            f"{self.base}/api/v1/login",
            json={"user": ADMIN["FERRY_ADMIN_USERNAME"], "password": ADMIN["FERRY_ADMIN_PASSWORD"]},
            timeout=5,
        )
        self.headers = {"Authorization": f"Bearer {login.json()['data']['authToken']}"}

    def get(self, path: str) -> requests.Response:
        return requests.get(f"{self.base}{path}", headers=self.headers, timeout=5)

    def download(self, directory: str, url: str) -> str:
        response = self.get(f"/{directory}?download={quote(url, safe='')}")
        assert response.status_code == 200, response.text
        return response.json()["download_id"]

    def active(self) -> list[dict]:
        return self.get("/api/v1/downloads").json()["downloads"]

    def history(self) -> list[dict]:
        return self.get("/?download_history=").json()["history"]

    def stop(self) -> None:
        stop_gently(self.process)
        self.log.close()


def stop_gently(process: subprocess.Popen) -> None:
    """SIGTERM, and a kill if the process is still there 20 seconds later."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture
def servers(tmp_path):
    started: list[Ferry] = []

    def run() -> Ferry:
        ferry = Ferry(tmp_path / "data", tmp_path / "ferry.log")
        started.append(ferry)
        return ferry

    yield run
    for ferry in started:
        ferry.stop()


def partials(data_dir: Path) -> list[Path]:
    return [
        Path(d, n) for d, _, names in os.walk(data_dir) for n in names if PART_FILE.fullmatch(n)
    ]


def start_slow_downloads(ferry: Ferry, remote: RemoteServer, data_dir: Path) -> list[str]:
    """SLOW_COUNT transfers that would take minutes, all writing their part files."""
    ids = []
    for number in range(SLOW_COUNT):
        url = remote.trickle(f"/slow-{number}.bin", pieces=10_000, piece=b"z" * 1024, pause=0.05)
        ids.append(ferry.download(f"slow/{number}", url))

    def all_streaming() -> bool:
        entries = ferry.active()
        return (
            len(entries) == SLOW_COUNT
            and all(e["status"] == "downloading" and e["current_size"] > 0 for e in entries)
            and len(partials(data_dir)) == SLOW_COUNT
        )

    assert wait_until(all_streaming, timeout=30)
    return ids


def assert_new_downloads_work(ferry: Ferry, remote: RemoteServer, data_dir: Path) -> None:
    url = remote.generated("/after.bin", 2_000_000)
    download_id = ferry.download("after", url)
    assert wait_until(lambda: any(h["id"] == download_id for h in ferry.history()), timeout=30), (
        "the new download never finished"
    )
    entry = next(h for h in ferry.history() if h["id"] == download_id)
    assert (entry["status"], entry["total_bytes"], entry["error"]) == ("completed", 2_000_000, None)
    assert ferry.get("/after/after.bin").content == pattern_bytes(2_000_000)


def assert_stopped_in_history(history: list[dict], ids: list[str]) -> None:
    stopped = {h["id"]: h for h in history if h["id"] in ids}
    assert set(stopped) == set(ids)
    for entry in stopped.values():
        assert (entry["status"], entry["error"], entry["total_bytes"]) == (
            "failed",
            "SERVER_STOPPED",
            None,
        )
        assert entry["end_time"] >= entry["start_time"]


def test_kill_9_mid_download_is_recovered_on_the_next_start(servers, remote, tmp_path):
    data_dir = tmp_path / "data"
    ferry = servers()
    ids = start_slow_downloads(ferry, remote, data_dir)

    ferry.process.send_signal(signal.SIGKILL)
    ferry.process.wait(timeout=10)
    assert len(partials(data_dir)) == SLOW_COUNT  # what a crash leaves behind

    again = servers()
    assert_stopped_in_history(again.history(), ids)
    assert again.active() == []
    assert partials(data_dir) == []
    for number in range(SLOW_COUNT):
        assert os.listdir(data_dir / "files" / "slow" / str(number)) == []
    assert_new_downloads_work(again, remote, data_dir)


def test_sigterm_mid_download_exits_0_and_records_the_downloads(servers, remote, tmp_path):
    data_dir = tmp_path / "data"
    ferry = servers()
    ids = start_slow_downloads(ferry, remote, data_dir)

    ferry.process.send_signal(signal.SIGTERM)
    assert ferry.process.wait(timeout=30) == 0
    assert partials(data_dir) == []
    # The stopping server recorded them itself: nothing is left for recovery to close.
    store = Store(data_dir / "state")
    try:
        repository = DownloadRepository(store)
        assert repository.unfinished() == []
        assert_stopped_in_history(repository.history(), ids)
    finally:
        store.close()

    again = servers()
    assert_stopped_in_history(again.history(), ids)
    assert_new_downloads_work(again, remote, data_dir)


def crash_mid_resumable_download(servers, remote, data_dir: Path, size: int) -> str:
    """A download a kill -9 cut off half way, from a server that lets it resume."""
    url = remote.ranged("/big.bin", size, pause=0.05, validators=BIG_VALIDATORS)
    ferry = servers()
    download_id = ferry.download("big", url)
    assert wait_until(
        lambda: any(e["current_size"] >= 2 * 1024 * 1024 for e in ferry.active()), timeout=30
    )
    time.sleep(1)  # the record that says how to resume is made durable after a second

    ferry.process.send_signal(signal.SIGKILL)
    ferry.process.wait(timeout=10)
    assert len(partials(data_dir)) == 1
    return download_id


def assert_resumes_where_it_stopped(servers, remote, data_dir: Path, download_id: str, size):
    asked_before = len(remote.requests)
    remote.ranged("/big.bin", size, validators=BIG_VALIDATORS)  # fast from now on

    again = servers()
    assert wait_until(lambda: any(h["id"] == download_id for h in again.history()), timeout=30)
    (entry,) = [h for h in again.history() if h["id"] == download_id]
    assert (entry["status"], entry["total_bytes"], entry["error"]) == ("completed", size, None)
    assert again.get("/big/big.bin").content == pattern_bytes(size)
    assert partials(data_dir) == []
    (resumed,) = remote.requests[asked_before:]
    assert resumed.headers["If-Range"] == '"big-v1"'
    first = int(resumed.headers["Range"].removeprefix("bytes=").split("-")[0])
    assert first >= 1024 * 1024  # what the first run wrote, less the margin, was kept
    metrics = again.get("/api/v1/metrics").text
    assert 'ferry_downloads_resumed_total{kind="file"} 1.0' in metrics


BIG_VALIDATORS = [("ETag", '"big-v1"')]
BIG_SIZE = 8 * 1024 * 1024


def test_kill_9_mid_download_resumes_where_it_stopped_on_the_next_start(servers, remote, tmp_path):
    data_dir = tmp_path / "data"
    download_id = crash_mid_resumable_download(servers, remote, data_dir, BIG_SIZE)
    assert_resumes_where_it_stopped(servers, remote, data_dir, download_id, BIG_SIZE)


def test_admin_commands_between_a_crash_and_the_restart_leave_the_download_alone(
    servers, remote, tmp_path
):
    data_dir = tmp_path / "data"
    download_id = crash_mid_resumable_download(servers, remote, data_dir, BIG_SIZE)
    (part,) = partials(data_dir)
    written = part.stat().st_size

    users = [sys.executable, "-m", "ferry.cli", "users", "--data-dir", str(data_dir)]
    created = subprocess.run(
        [*users, "create", "alice", "--password", "alice-password-1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    assert "created alice" in created.stdout

    assert partials(data_dir) == [part] and part.stat().st_size == written
    store = Store(data_dir / "state")
    try:
        (unfinished,) = DownloadRepository(store).unfinished()
        assert unfinished["id"] == download_id
    finally:
        store.close()
    assert_resumes_where_it_stopped(servers, remote, data_dir, download_id, BIG_SIZE)


def stop_once_written(ferry: Ferry, data_dir: Path, written: int) -> None:
    """SIGTERM once a download has `written` bytes: the server exits 0 and keeps the
    one resumable part file."""
    assert wait_until(lambda: any(e["current_size"] >= written for e in ferry.active()), timeout=60)
    ferry.process.send_signal(signal.SIGTERM)
    assert ferry.process.wait(timeout=30) == 0
    assert len(partials(data_dir)) == 1


def test_sigterm_mid_resumable_download_keeps_it_and_the_next_start_finishes_it(
    servers, remote, tmp_path
):
    data_dir = tmp_path / "data"
    url = remote.ranged("/big.bin", BIG_SIZE, pause=0.05, validators=BIG_VALIDATORS)
    ferry = servers()
    download_id = ferry.download("big", url)
    stop_once_written(ferry, data_dir, 2 * 1024 * 1024)
    assert_resumes_where_it_stopped(servers, remote, data_dir, download_id, BIG_SIZE)


def test_a_paused_download_survives_a_restart_and_resumes_by_range(servers, remote, tmp_path):
    url = remote.ranged("/big.bin", BIG_SIZE, pause=0.05, validators=BIG_VALIDATORS)
    ferry = servers()
    download_id = ferry.download("big", url)
    assert wait_until(lambda: any(e["current_size"] > 0 for e in ferry.active()), timeout=30)
    paused = requests.post(
        f"{ferry.base}/api/v1/downloads/{download_id}/pause", headers=ferry.headers, timeout=15
    )
    assert paused.status_code == 200, paused.text
    kept = paused.json()["download"]["current_size"]
    ferry.stop()

    asked_before = len(remote.requests)
    remote.ranged("/big.bin", BIG_SIZE, validators=BIG_VALIDATORS)
    again = servers()
    (entry,) = again.active()
    assert (entry["id"], entry["status"], entry["current_size"]) == (download_id, "paused", kept)
    assert len(remote.requests) == asked_before  # paused means paused, restart or not
    resumed = requests.post(
        f"{again.base}/api/v1/downloads/{download_id}/resume", headers=again.headers, timeout=15
    )
    assert resumed.status_code == 200 and resumed.json()["restarted"] is False
    assert wait_until(lambda: any(h["id"] == download_id for h in again.history()), timeout=30)
    assert again.get("/big/big.bin").content == pattern_bytes(BIG_SIZE)
    (asked,) = remote.requests[asked_before:]
    assert asked.headers["Range"].startswith("bytes=")


# Past the 64 MiB from which a body read in order is written past the page cache.
HUGE_SIZE = 80 * 1024 * 1024
HUGE_SENT_FIRST = 70 * 1024 * 1024


def test_a_huge_download_cut_by_sigterm_resumes_without_fetching_again_what_it_wrote(
    servers, remote, tmp_path
):
    data_dir = tmp_path / "data"
    content = pattern_bytes(HUGE_SIZE)

    def fast_then_stalled(h) -> None:
        headers = [("Content-Length", str(HUGE_SIZE)), ("Accept-Ranges", "bytes")]
        h.send_head(200, headers + BIG_VALIDATORS)
        h.wfile.write(content[:HUGE_SENT_FIRST])
        h.wfile.flush()
        remote.release.wait(60)

    url = remote.route("/huge.bin", fast_then_stalled)
    ferry = servers()
    download_id = ferry.download("huge", url)
    stop_once_written(ferry, data_dir, 60 * 1024 * 1024)

    asked_before = len(remote.requests)
    remote.ranged("/huge.bin", HUGE_SIZE, validators=BIG_VALIDATORS)
    again = servers()
    assert wait_until(lambda: any(h["id"] == download_id for h in again.history()), timeout=60)
    (entry,) = [h for h in again.history() if h["id"] == download_id]
    assert (entry["status"], entry["total_bytes"]) == ("completed", HUGE_SIZE)
    assert entry["sha256"] == hashlib.sha256(content).hexdigest()
    assert (data_dir / "files" / "huge" / "huge.bin").read_bytes() == content
    assert partials(data_dir) == []
    # Read in order over one connection, so one range: what the first run never wrote
    # (less a margin, and at most one unwritten buffer short of what it received).
    (resumed,) = remote.requests[asked_before:]
    first = int(resumed.headers["Range"].removeprefix("bytes=").split("-")[0])
    assert first >= HUGE_SENT_FIRST - 6 * 1024 * 1024


def movers_of(pid: int) -> list[int]:
    """The body movers the server `pid` started, from any of its threads."""
    found = []
    for listed in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in listed.read_text().split():
            with contextlib.suppress(OSError):
                if b"mover_process" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
    return found


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc")
def test_downloads_at_once_go_to_a_mover_that_ends_with_the_server(remote, tmp_path):
    """As many downloads as cores, and one more: bodies moved in turn, by a mover."""
    count = (os.cpu_count() or 1) + 1
    size = 3 * 1024 * 1024 + 77
    data_dir = tmp_path / "data"
    ferry = Ferry(data_dir, tmp_path / "ferry.log", "--max-concurrent-downloads", str(count))
    try:
        urls = [remote.ranged(f"/m{n}.bin", size, pause=0.01, version=n) for n in range(count)]
        ids = [ferry.download(f"moved/{n}", url) for n, url in enumerate(urls)]
        assert wait_until(lambda: movers_of(ferry.process.pid), timeout=30)
        (mover,) = movers_of(ferry.process.pid)
        assert wait_until(lambda: {h["id"] for h in ferry.history()} >= set(ids), timeout=60), (
            "the downloads never finished"
        )
        for n, download_id in enumerate(ids):
            (entry,) = [h for h in ferry.history() if h["id"] == download_id]
            content = pattern_bytes(size, n * 7919)
            assert (entry["status"], entry["total_bytes"]) == ("completed", size)
            assert entry["sha256"] == hashlib.sha256(content).hexdigest()
            assert (data_dir / "files" / "moved" / str(n) / f"m{n}.bin").read_bytes() == content
    finally:
        ferry.stop()
    assert ferry.process.returncode == 0
    assert wait_until(lambda: not Path(f"/proc/{mover}").exists(), timeout=10)
