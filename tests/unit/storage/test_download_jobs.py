"""Downloads as jobs: one worker at a time holds each, by a lease it renews; a lease
that runs out lets another worker take the job over. On both backends."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.types.json import Json

from storage.postgres import migrate
from tests.support.postgres import SKIP_REASON, databases
from tests.unit.storage.conftest import claimed_by_two_workers

# A lease that has run out the moment it is taken: a worker that died at once.
RUN_OUT = -1.0
LEASE = 60.0


def queued(record_id: str, start_time: int = 50, status: str = "starting") -> dict:
    return {"id": record_id, "status": status, "start_time": start_time, "current_size": 0}


def test_two_workers_claiming_at_once_never_get_the_same_job(repos):
    downloads = repos.downloads
    for number in range(6):
        downloads.save(queued(f"d{number}", start_time=number))

    def claim_one(worker: str) -> str | None:
        claim = downloads.claim_next(worker, LEASE)
        return None if claim is None else claim.record["id"]

    assert sorted(claimed_by_two_workers(claim_one)) == [f"d{number}" for number in range(6)]
    assert downloads.claim("d0", "w3", LEASE) is None


def test_the_oldest_job_is_claimed_first_and_paused_or_finished_ones_never(repos):
    downloads = repos.downloads
    downloads.save(queued("late", start_time=90))
    downloads.save(queued("paused", start_time=1, status="paused"))
    downloads.save({**queued("done", start_time=2, status="completed"), "end_time": 3})
    downloads.save(queued("early", start_time=10))
    assert downloads.count_runnable() == 2
    first = downloads.claim_next("w1", LEASE)
    assert (first.record["id"], first.previous_worker, first.stale) == ("early", None, False)
    assert downloads.claim_next("w1", LEASE).record["id"] == "late"
    assert downloads.claim_next("w1", LEASE) is None


def test_the_queue_keeps_its_order_as_records_change_and_history_is_pruned(repos):
    downloads = repos.downloads
    for number in range(8):
        downloads.save(queued(f"d{number}", start_time=100 + number))
    assert downloads.claim_next("w1", LEASE).record["id"] == "d0"
    # Put back to the front, moved behind everyone, finished, paused: the claims follow.
    downloads.save(queued("d5", start_time=1))
    downloads.save(queued("d1", start_time=500))
    downloads.save({**queued("d2", status="completed"), "end_time": 200})
    downloads.save({**queued("d0", status="failed"), "end_time": 201})
    downloads.save(queued("d3", status="paused"))
    assert downloads.count_runnable() == 5
    downloads.prune_history(0)
    assert downloads.count_runnable() == 5
    claimed = [downloads.claim_next("w1", LEASE).record["id"] for _ in range(5)]
    assert claimed == ["d5", "d4", "d6", "d7", "d1"]
    assert downloads.claim_next("w1", LEASE) is None
    # A paused download resumed queues again at its place.
    downloads.save(queued("d3", start_time=103))
    assert downloads.count_runnable() == 6
    assert downloads.claim_next("w2", LEASE).record["id"] == "d3"


def test_a_job_whose_lease_ran_out_is_taken_over_and_says_from_whom(repos):
    downloads = repos.downloads
    downloads.save(queued("d1"))
    assert downloads.claim_next("dead", RUN_OUT).record["id"] == "d1"
    taken_over = downloads.claim_next("alive", LEASE)
    assert (taken_over.record["id"], taken_over.previous_worker) == ("d1", "dead")
    # The dead worker's renewal (had it only stalled) finds the job gone.
    assert downloads.renew("dead", {"d1": 10}, LEASE) == {}
    assert downloads.renew("alive", {"d1": 10}, LEASE) == {"d1": None}


def test_renewing_keeps_a_job_from_other_workers(repos):
    downloads = repos.downloads
    downloads.save(queued("d1"))
    downloads.claim_next("w1", RUN_OUT)
    # Renewed after running out but before anyone else claimed it: held again.
    assert downloads.renew("w1", {"d1": 5}, LEASE) == {"d1": None}
    assert downloads.claim_next("w2", LEASE) is None
    assert downloads.taken(["d1"]) == {"d1"}


def test_a_released_job_is_claimable_again_as_a_fresh_hand_over(repos):
    downloads = repos.downloads
    downloads.save(queued("d1"))
    downloads.claim_next("w1", LEASE)
    downloads.release("d1", "w1")
    assert downloads.taken(["d1"]) == set()
    again = downloads.claim_next("w2", LEASE)
    assert (again.record["id"], again.previous_worker) == ("d1", None)


def test_a_stop_asked_elsewhere_reaches_the_worker_at_its_next_renewal(repos):
    downloads = repos.downloads
    downloads.save(queued("d1"))
    downloads.save(queued("d2"))
    assert not downloads.request_stop("d1", "cancel")  # nobody holds it yet
    downloads.claim_next("w1", LEASE)
    downloads.claim_next("w1", LEASE)
    assert downloads.request_stop("d1", "cancel")
    assert downloads.renew("w1", {"d1": 1, "d2": 1}, LEASE) == {"d1": "cancel", "d2": None}
    downloads.release("d1", "w1")
    downloads.claim("d1", "w2", LEASE)
    assert downloads.renew("w2", {"d1": 1}, LEASE) == {"d1": None}


def test_finished_jobs_are_taken_and_no_longer_claimable(repos):
    downloads = repos.downloads
    downloads.save(queued("d1"))
    downloads.claim_next("w1", LEASE)
    downloads.save({**queued("d1", status="completed"), "end_time": 60})
    downloads.release("d1", "w1")
    assert downloads.taken(["d1", "unknown"]) == {"d1", "unknown"}
    assert downloads.claim("d1", "w2", LEASE) is None
    assert downloads.count_runnable() == 0


def test_a_job_left_running_before_a_restart_is_claimed_as_a_crash_leftover(backend):
    downloads = backend.open().downloads
    downloads.save(queued("left", status="downloading"))
    downloads.claim_next("w1", LEASE)
    downloads = backend.open().downloads
    claim = downloads.claim_next("w2", LEASE)
    if backend.kind == "postgres":
        # The lease of the first opening still holds: nobody else may take it yet.
        assert claim is None
        return
    # The one owner of the files restarted: whatever ran before was cut off.
    assert (claim.record["id"], claim.stale) == ("left", True)


def test_an_imports_download_is_claimed_only_by_id_until_its_worker_dies(repos):
    downloads = repos.downloads
    downloads.save({**queued("imported"), "kind": "import"})
    assert downloads.claim_next("w1", LEASE) is None
    assert downloads.claim("imported", "importer", RUN_OUT).record["id"] == "imported"
    taken_over = downloads.claim_next("w1", LEASE)
    assert (taken_over.record["id"], taken_over.previous_worker) == ("imported", "importer")


def test_records_stored_before_downloads_were_jobs_become_claimable_ones(monkeypatch):
    if not databases.available:
        pytest.skip(SKIP_REASON)
    url = databases.new(migrated=False)
    before_jobs = [m for m in migrate.available() if m.name != "download_jobs"]
    monkeypatch.setattr(migrate, "available", lambda: before_jobs)
    with psycopg.connect(url, autocommit=True) as connection:
        migrate.upgrade(connection)
        for record_id, status, kind in (
            ("queued", "starting", "file"),
            ("nul", "downloading", "file"),
            ("imported", "starting", "import"),
            ("paused", "paused", "file"),
        ):
            doc = {"id": record_id, "status": status, "kind": kind, "filename": "a\u0000b"}
            connection.execute(
                "INSERT INTO downloads (id, doc, active) VALUES (%s, %s, true)",
                (record_id, Json(doc)),
            )
    monkeypatch.undo()
    with psycopg.connect(url, autocommit=True) as connection:
        assert [m.name for m in migrate.upgrade(connection)] == ["download_jobs"]
        rows = connection.execute(
            "SELECT id FROM downloads WHERE runnable AND file_kind ORDER BY id"
        ).fetchall()
    assert [row[0] for row in rows] == ["nul", "queued"]


def test_a_stop_asked_of_a_worker_that_died_goes_to_the_one_taking_over(repos):
    downloads = repos.downloads
    downloads.save(queued("d1"))
    downloads.claim_next("dead", 0.5)
    assert downloads.request_stop("d1", "cancel")
    downloads.renew("dead", {"d1": 0}, RUN_OUT)
    assert downloads.claim_next("alive", LEASE).stop_request == "cancel"
