"""Several processes on one PostgreSQL database: two API-only `ferry serve`s and two
`ferry worker`s on loopback. Downloads started through one instance are read through
the other; a worker killed with -9 mid-transfer leaves its downloads to the other, which
goes on from the part files by range; a cancel through the other instance reaches the
worker running the download. An import started through one instance is prepared and
imported by the workers; killed with -9 mid-import, it is finished by the other worker
with every message created once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import requests

from ferry.chat.generate import write_csv_export
from tests.live.test_downloads_live import ADMIN, Ferry, stop_gently
from tests.live.test_events_live import read_events
from tests.live.test_faults import EVERYTHING, import_status, post, upload, wait_for_state
from tests.support.postgres import SKIP_REASON, databases
from tests.support.remote import pattern_bytes, wait_until

pytestmark = [pytest.mark.live, pytest.mark.skipif(not databases.available, reason=SKIP_REASON)]
pytest_plugins = ("tests.support.download_fixtures",)

COUNT = 50
SIZE = 1 << 20
# Each 64 KiB block comes after this pause: about three seconds a file.
PACE = 0.2
ETAG = [("ETag", '"v1"')]
PER_WORKER = 3
MESSAGES = 100_000


class ApiOnly(Ferry):
    """`ferry serve --workers 0` on the shared database and data directory."""

    def __init__(self, data_dir: Path, log: Path, database_url: str):
        super().__init__(data_dir, log, "--workers", "0", env={"FERRY_DATABASE_URL": database_url})

    def delete(self, path: str) -> requests.Response:
        return requests.delete(f"{self.base}{path}", headers=self.headers, timeout=15)


class Worker:
    """`ferry worker` on the shared database and data directory."""

    def __init__(self, data_dir: Path, log: Path, database_url: str):
        self.log_path = log
        self.log = log.open("a")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ferry.cli",
                "worker",
                "--data-dir",
                str(data_dir),
                "--allow-private-networks",
                "--max-concurrent-downloads",
                str(PER_WORKER),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "FERRY_DATABASE_URL": database_url},
        )
        assert wait_until(
            lambda: (
                "running downloads and imports" in log.read_text()
                or self.process.poll() is not None
            ),
            timeout=30,
        ), log.read_text()
        assert self.process.poll() is None, log.read_text()

    def stop(self) -> None:
        stop_gently(self.process)
        self.log.close()


@pytest.fixture
def cluster(tmp_path):
    url = databases.new()
    data_dir = tmp_path / "data"
    started: list = []
    try:
        instances = [ApiOnly(data_dir, tmp_path / f"serve-{n}.log", url) for n in "ab"]
        started += instances
        workers = [Worker(data_dir, tmp_path / f"worker-{n}.log", url) for n in (1, 2)]
        started += workers
        yield url, instances, workers, data_dir / "files"
    finally:
        for process in reversed(started):
            process.stop()


def holders(url: str) -> dict[str, str]:
    """Download id -> the worker holding it, for downloads mid-transfer."""
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT id, worker_id FROM downloads WHERE runnable AND received > 0 "
            "AND received < %s AND lease_until > now()",
            (SIZE,),
        ).fetchall()
    return dict(rows)


def test_downloads_survive_a_killed_worker_and_a_cancel_reaches_across(cluster, remote):
    url, (first, second), workers, files = cluster
    # Started first, so a worker claims it before the others.
    endless = first.download(
        "cancelled", remote.ranged("/endless.bin", 1 << 30, pause=PACE, validators=ETAG)
    )
    ids = {
        first.download("mirror", remote.ranged(f"/f{n}.bin", SIZE, pause=PACE, validators=ETAG)): n
        for n in range(COUNT)
    }

    # Instance B sees what A started.
    listed = {d["id"] for d in second.active()}
    assert set(ids) | {endless} <= listed

    # Kill -9 the worker that does not run the endless download while it holds
    # downloads mid-transfer; the endless one's worker stays, to hear the cancel.
    pids = {worker.process.pid: worker for worker in workers}

    def pid_of(holder: str) -> int:
        return int(holder.split(":")[1])

    held: dict[str, str] = {}

    def victim_busy() -> bool:
        # The snapshot that shows it busy is the one the victim is chosen from: asked
        # again, the victim's transfers of the moment may just have ended.
        held.clear()
        held.update(holders(url))
        return endless in held and any(
            pid_of(h) != pid_of(held[endless]) for i, h in held.items() if i != endless
        )

    assert wait_until(victim_busy, timeout=30)
    survivor = pid_of(held[endless])
    victim_pid = next(pid for pid in pids if pid != survivor)
    cut_off = {i for i, holder in held.items() if pid_of(holder) == victim_pid}
    assert cut_off
    pids[victim_pid].process.send_signal(signal.SIGKILL)
    pids[victim_pid].process.wait()

    # A cancel through B reaches the worker running the endless download.
    cancelled = second.delete(f"/api/v1/downloads/{endless}")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["download"]["status"] == "cancelled"

    def all_completed() -> bool:
        history = {d["id"]: d for d in second.history()}
        return all(history.get(i, {}).get("status") == "completed" for i in ids)

    assert wait_until(all_completed, timeout=180), second.active()
    for n in range(COUNT):
        assert (files / "mirror" / f"f{n}.bin").read_bytes() == pattern_bytes(SIZE), n
        asked = [r.headers.get("Range") for r in remote.requests if r.path == f"/f{n}.bin"]
        # At most one full body; everything else a ranged continuation.
        assert asked.count(None) == 1, (n, asked)
    continued = {
        n
        for i, n in ids.items()
        if i in cut_off
        and any(r.headers.get("Range") for r in remote.requests if r.path == f"/f{n}.bin")
    }
    assert continued, "the killed worker's downloads went on by range elsewhere"
    assert not list((files / "cancelled").iterdir())


def test_a_worker_stopped_by_sigterm_hands_its_downloads_to_the_other(cluster, remote):
    url, (first, second), workers, files = cluster
    ids = [
        first.download("handed", remote.ranged(f"/h{n}.bin", SIZE, pause=PACE, validators=ETAG))
        for n in range(2 * PER_WORKER)
    ]
    pids = {worker.process.pid: worker for worker in workers}
    assert wait_until(lambda: len(holders(url)) == 2 * PER_WORKER, timeout=30)
    leaving = pids[int(holders(url)[ids[0]].split(":")[1])]
    leaving.process.send_signal(signal.SIGTERM)
    assert leaving.process.wait(timeout=20) == 0
    assert "Ferry worker stopped." in leaving.log_path.read_text()

    def all_completed() -> bool:
        history = {d["id"]: d["status"] for d in second.history()}
        return all(history.get(i) == "completed" for i in ids)

    assert wait_until(all_completed, timeout=120), second.active()
    for n in range(2 * PER_WORKER):
        assert (files / "handed" / f"h{n}.bin").read_bytes() == pattern_bytes(SIZE)
        asked = [r.headers.get("Range") for r in remote.requests if r.path == f"/h{n}.bin"]
        assert asked.count(None) == 1, (n, asked)
    assert any(r.headers.get("Range") for r in remote.requests)


def test_the_event_stream_of_one_instance_tells_what_a_worker_does_for_another(cluster, remote):
    url, (first, second), workers, files = cluster
    # A read waits 10 s at most (the keep-alive comes every 15 s): an event that never
    # comes fails the test rather than hanging it.
    stream = requests.get(
        f"{second.base}/api/v1/events", headers=second.headers, stream=True, timeout=(5, 10)
    )
    assert stream.status_code == 200
    lines = stream.iter_lines(decode_unicode=True)
    assert next(lines) == ": connected"
    # Started through A, run by a worker: B's stream hears both.
    started = first.download("told", remote.ranged("/told.bin", SIZE, pause=0.01, validators=ETAG))
    told = []
    for event, data in read_events(lines):
        if data.get("download", {}).get("id") != started:
            continue
        told.append(event)
        if event == "download.completed":
            break
    stream.close()
    assert told[0] == "download.started" and told[-1] == "download.completed", told
    assert told.count("download.completed") == 1


def test_wrong_passwords_through_two_instances_trip_one_throttle(cluster):
    _, instances, _, _ = cluster
    user = ADMIN["FERRY_ADMIN_USERNAME"]

    def login(instance, password: str) -> requests.Response:
        return requests.post(
            f"{instance.base}/api/v1/login", json={"user": user, "password": password}, timeout=15
        )

    for attempt in range(5):  # five, alternating: neither instance saw five alone
        assert login(instances[attempt % 2], "wrong-password-1").status_code == 401
    for instance in instances:
        refused = login(instance, ADMIN["FERRY_ADMIN_PASSWORD"])
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"] == "error-login-blocked-for-user"


def import_holder(url: str) -> str | None:
    """The worker holding the running import job, if one does."""
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT worker_id FROM operations WHERE job = 'import' AND lease_until > now()"
        ).fetchone()
    return row[0] if row else None


def stored_messages(url: str) -> int:
    with psycopg.connect(url) as connection:
        return connection.execute("SELECT count(*) FROM messages").fetchone()[0]


def test_an_import_killed_with_its_worker_is_finished_by_another_creating_each_message_once(
    cluster, tmp_path
):
    url, (first, second), workers, _ = cluster
    export = tmp_path / "big.zip"
    write_csv_export(export, messages=MESSAGES, channels=10, users=20)
    # Uploaded through A, prepared by a worker, seen ready through B.
    assert upload(first, export).status_code == 200
    assert wait_for_state(second, {"ready", "error"}, timeout=120) == "ready", import_status(second)
    assert post(first, "/api/v1/startImport", json=EVERYTHING).status_code == 200
    holder: list[str | None] = [None]

    def midway() -> bool:
        holder[0] = import_holder(url)
        return holder[0] is not None and 0 < stored_messages(url) < MESSAGES // 2

    assert wait_until(midway, timeout=120), import_status(second)
    victim = next(w for w in workers if w.process.pid == int(holder[0].split(":")[1]))
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait()
    cut_at = stored_messages(url)
    assert cut_at < MESSAGES

    assert wait_for_state(second, {"done", "error"}, timeout=300) == "done", import_status(second)
    assert stored_messages(url) == MESSAGES
    survivor = next(w for w in workers if w is not victim)
    assert f"taking over import from {holder[0]}" in survivor.log_path.read_text()
