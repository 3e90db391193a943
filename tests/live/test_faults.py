"""Faults a real `ferry serve` must survive: kill -9 at random moments of downloads,
prepares and imports, and a full disk in the middle of an import."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from ferry.chat.generate import write_csv_export
from ferry.chat.operations.lifecycle import DISK_FULL_REASON
from tests.live.test_downloads_live import Ferry
from tests.support.remote import RemoteServer, wait_until

pytestmark = [pytest.mark.live, pytest.mark.slow]
pytest_plugins = ("tests.support.download_fixtures",)

SEED = 20261122
ROUNDS = 6
# The longest random wait into each phase before the kill, in seconds.
DELAYS = {"downloading": 1.0, "preparing": 0.3, "importing": 2.0}
BIG_MESSAGES = 60_000
UNFINISHED_DOWNLOADS = {"starting", "downloading"}
BUSY_STATES = {"loading", "importing"}
EVERYTHING = {"input": {"users": {"all": True}, "channels": {"all": True}}}


def leftovers(data_dir: Path) -> list[Path]:
    """Part files of downloads and temp files of atomic writes: what a crash leaves."""
    return [
        Path(d, n)
        for d, _, names in os.walk(data_dir)
        for n in names
        if n.endswith((".part", ".tmp"))
    ]


def post(ferry: Ferry, path: str, **kwargs) -> requests.Response:
    return requests.post(f"{ferry.base}{path}", headers=ferry.headers, timeout=60, **kwargs)


def upload(ferry: Ferry, export: Path) -> requests.Response:
    with export.open("rb") as handle:
        return post(
            ferry,
            "/api/v1/uploadImportFile",
            files={"file": (export.name, handle, "application/zip")},
            data={"importerKey": "csv"},
        )


def import_status(ferry: Ferry) -> dict:
    return ferry.get("/api/v1/import.status").json()


def step(ferry: Ferry) -> str:
    return (import_status(ferry).get("operation") or {}).get("status", "")


def wait_for_state(ferry: Ferry, states: set[str], timeout: float = 30) -> str:
    seen = [""]

    def reached() -> bool:
        seen[0] = import_status(ferry)["state"]
        return seen[0] in states

    assert wait_until(reached, timeout=timeout), f"import state stayed {seen[0]}"
    return seen[0]


def full_import(ferry: Ferry, export: Path, timeout: float = 30) -> dict:
    """Upload, prepare and import `export`; the final import.status."""
    assert upload(ferry, export).status_code == 200
    assert wait_for_state(ferry, {"ready", "error"}, timeout) == "ready", import_status(ferry)
    assert post(ferry, "/api/v1/startImport", json=EVERYTHING).status_code == 200
    assert wait_for_state(ferry, {"done", "error"}, timeout) == "done", import_status(ferry)
    return import_status(ferry)


def slow_downloads(ferry: Ferry, remote: RemoteServer, round_number: int) -> list[str]:
    ids = []
    for number in range(2):
        url = remote.trickle(
            f"/r{round_number}-{number}.bin", pieces=10_000, piece=b"z" * 1024, pause=0.05
        )
        ids.append(ferry.download(f"slow/{round_number}/{number}", url))
    return ids


def kill_9(ferry: Ferry) -> None:
    ferry.process.send_signal(signal.SIGKILL)
    ferry.process.wait(timeout=10)


@pytest.fixture
def exports(tmp_path):
    big, small = tmp_path / "big.zip", tmp_path / "small.zip"
    write_csv_export(big, messages=BIG_MESSAGES, channels=20)
    write_csv_export(small, messages=200, channels=3, users=5, seed=1)
    return big, small


def test_random_kill_9_rounds_leave_nothing_running(tmp_path, remote, exports):
    big, small = exports
    data_dir = tmp_path / "data"
    log = tmp_path / "ferry.log"
    rng = random.Random(SEED)
    ferry = Ferry(data_dir, log)
    moments = []
    order = rng.sample(list(DELAYS) * 2, k=ROUNDS)
    try:
        for round_number in range(ROUNDS):
            # Each phase twice, in a seeded random order, each kill after a random delay
            # into its phase: downloads only, the big export being parsed, or imported.
            phase = order[round_number]
            acknowledged = slow_downloads(ferry, remote, round_number)
            if phase == "preparing":
                assert upload(ferry, big).status_code == 200
                assert wait_until(lambda f=ferry: step(f).startswith("importer_preparing_"))
            elif phase == "importing":
                assert upload(ferry, big).status_code == 200
                assert wait_for_state(ferry, {"ready"}) == "ready"
                assert post(ferry, "/api/v1/startImport", json=EVERYTHING).status_code == 200
            time.sleep(rng.uniform(0, DELAYS[phase]))
            at = step(ferry)
            kill_9(ferry)
            moments.append((phase, at))

            ferry.log.close()
            ferry = Ferry(data_dir, log)  # comes up and logs in on the same data dir
            finished = {h["id"]: h["status"] for h in ferry.history()}
            finished.update({a["id"]: a["status"] for a in ferry.active()})
            for download_id in acknowledged:
                assert download_id in finished, (moments, download_id)
                assert finished[download_id] not in UNFINISHED_DOWNLOADS, (moments, finished)
            status = import_status(ferry)
            assert status["state"] not in BUSY_STATES, (moments, status)
            assert leftovers(data_dir) == [], moments
        assert full_import(ferry, small)["state"] == "done"
        assert leftovers(data_dir) == []
    finally:
        ferry.stop()
    print("kill moments:", moments)


def mount_tmpfs(
    directory: Path, size: str, *, remount: bool = False, read_only: bool = False
) -> None:
    options = f"remount,size={size}" if remount else f"size={size}"
    options += ",ro" if read_only else ",rw"
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)],
        check=True,
        capture_output=True,
        text=True,
    )


@contextlib.contextmanager
def tmpfs_disk(directory: Path, size: str):
    """`directory` on a tmpfs of `size`, unmounted at the end; skips the test without root."""
    directory.mkdir()
    try:
        mount_tmpfs(directory, size)
    except (OSError, subprocess.CalledProcessError) as failure:
        reason = getattr(failure, "stderr", "") or failure
        pytest.skip(f"cannot mount a tmpfs here (needs root): {reason}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


@pytest.fixture
def small_disk(tmp_path):
    """A directory on a 6 MB tmpfs."""
    with tmpfs_disk(tmp_path / "disk", "6m") as disk:
        yield disk


def assert_failed_for_lack_of_space(ferry: Ferry, data_dir: Path) -> None:
    assert wait_for_state(ferry, {"error", "done"}) == "error"
    operation = import_status(ferry)["operation"]
    assert (operation["status"], operation["error"]) == ("importer_import_failed", DISK_FULL_REASON)
    assert ferry.get("/api/info").status_code == 200
    assert ferry.get("/api/v1/me").status_code == 200
    assert leftovers(data_dir) == []
    # A failed operation keeps no staging: the space is given back.
    assert list((data_dir / "state" / "staging").glob("*")) == []


def test_full_disk_fails_the_import_readably_and_the_server_keeps_serving(
    tmp_path, small_disk, exports
):
    big, small = exports
    data_dir = small_disk / "data"
    ferry = Ferry(data_dir, tmp_path / "ferry.log")
    try:
        # 6 MB: the upload fits, its staging does not.
        assert upload(ferry, big).status_code == 200
        assert_failed_for_lack_of_space(ferry, data_dir)

        # 20 MB: the staging fits, the imported workspace does not.
        mount_tmpfs(small_disk, "20m", remount=True)
        assert upload(ferry, big).status_code == 200
        assert wait_for_state(ferry, {"ready", "error"}) == "ready", import_status(ferry)
        assert post(ferry, "/api/v1/startImport", json=EVERYTHING).status_code == 200
        assert_failed_for_lack_of_space(ferry, data_dir)

        # A disk filled by something else: the upload itself is refused, readably.
        filler = small_disk / "filler"
        free = shutil.disk_usage(small_disk).free
        filler.write_bytes(b"f" * max(free - 256 * 1024, 0))
        refused = upload(ferry, big)
        assert refused.status_code == 400, refused.text
        assert refused.json()["errorType"] == "error-disk-full", refused.text
        assert ferry.get("/api/info").status_code == 200
        assert leftovers(data_dir) == []

        filler.unlink()  # space again: a small import goes through
        assert full_import(ferry, small)["state"] == "done"
        assert leftovers(data_dir) == []
    finally:
        ferry.stop()


def fill(disk: Path) -> Path:
    """Write a file on `disk` until not one byte more fits; returns it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for block in (b"f" * 65536, b"f"):
            with contextlib.suppress(OSError):
                while os.write(fd, block):
                    pass
    finally:
        os.close(fd)
    return filler


def log_in(ferry: Ferry) -> requests.Response:
    return requests.post(
        f"{ferry.base}/api/v1/login",
        json={"user": "root", "password": "live-downloads-pw-1"},
        timeout=10,
    )


def health(ferry: Ferry) -> tuple[int, dict]:
    response = requests.get(f"{ferry.base}/api/v1/health", timeout=5)
    return response.status_code, response.json()["checks"]


def test_a_full_or_read_only_disk_degrades_health_and_refuses_writes_readably(tmp_path):
    with tmpfs_disk(tmp_path / "disk", "40m") as disk:
        ferry = Ferry(disk / "data", tmp_path / "ferry.log")
        try:
            ok = {"data_dir_writable": True, "disk_space_available": True}
            assert health(ferry) == (200, ok)

            filler = fill(disk)
            assert health(ferry) == (
                503,
                {"data_dir_writable": True, "disk_space_available": False},
            )
            refused = log_in(ferry)
            assert refused.status_code == 507, refused.text
            assert refused.json()["errorType"] == "error-disk-full"
            assert ferry.get("/api/v1/me").status_code == 200  # reads go on
            filler.unlink()
            assert health(ferry) == (200, ok)
            assert log_in(ferry).status_code == 200

            # files/ mounted read-only (state/ holds open files, so it cannot be remounted).
            files = disk / "data" / "files"
            mount_tmpfs(files, "20m")
            try:
                mount_tmpfs(files, "20m", remount=True, read_only=True)
                assert health(ferry) == (
                    503,
                    {"data_dir_writable": False, "disk_space_available": True},
                )
                url = quote("http://127.0.0.1:9/x.bin", safe="")
                refused = ferry.get(f"/incoming?download={url}")
                assert refused.status_code == 507, refused.text
                assert refused.json()["errorType"] == "error-storage-read-only"
            finally:
                subprocess.run(["umount", "-l", str(files)], check=False)
            assert health(ferry) == (200, ok)
        finally:
            ferry.stop()
