"""Import work as jobs: a job whose worker stops renewing its lease is finished by
another, a stopping worker hands its job back where storage is shared, and an operation
cut off with nobody to go on with it is ended when workers start."""

from __future__ import annotations

import threading

import pytest

from ferry.chat.operations.records import OperationRecords
from ferry.chat.operations.workers import IMPORT, HandBack, ImportWorkers
from storage.operations import OperationRepository
from storage.store import Store
from tests.support.remote import wait_until

FAST = {"lease_seconds": 0.3, "tick_seconds": 0.02}


@pytest.fixture
def repository(tmp_path):
    store = Store(tmp_path / "state", fsync=False)
    yield OperationRepository(store)
    store.close()


def operation(repository: OperationRepository, status: str = "importer_new") -> str:
    repository.insert(
        {
            "_id": "op1",
            "ts": "2026-01-01",
            "_updatedAt": "2026-01-01",
            "status": status,
            "valid": True,
        }
    )
    return "op1"


def workers(repository, name: str, **timing) -> ImportWorkers:
    return ImportWorkers(
        OperationRecords(repository), repository, staging=None, worker_id=name, **timing
    )


def test_a_job_whose_worker_stops_renewing_is_finished_by_another(repository):
    op_id = operation(repository)
    hung = threading.Event()
    calls: list[tuple[str, dict]] = []

    def stuck(op_id: str, job_input: dict) -> None:
        calls.append(("stuck", job_input))
        hung.wait(10)

    def finish(op_id: str, job_input: dict) -> None:
        calls.append(("other", job_input))

    # Renews far too late: its lease runs out while its work hangs.
    first = workers(repository, "first", lease_seconds=0.3, tick_seconds=30)
    second = workers(repository, "second", **FAST)
    first.handle(IMPORT, stuck)
    second.handle(IMPORT, finish)
    first.queue(op_id, IMPORT, {"user_id": "u1"}, status="importer_importing_started")
    first.start()
    try:
        assert wait_until(lambda: calls == [("stuck", {"user_id": "u1"})])
        second.start()
        assert wait_until(lambda: len(calls) == 2, timeout=5)
        assert calls[1] == ("other", {"user_id": "u1"})
        assert wait_until(lambda: repository.running_jobs([IMPORT]) == 0)
        # Done once: nobody claims it again.
        assert repository.claim_job("third", 60, [IMPORT]) is None
    finally:
        hung.set()
        first.shutdown()
        second.shutdown()
    assert repository.get(op_id)["status"] == "importer_importing_started"


def test_a_stopping_worker_hands_its_job_back_where_storage_is_shared(repository):
    repository.shared = True
    op_id = operation(repository)
    # A lease far longer than the wait below: only a handed-back job is claimed in time.
    leaving = workers(repository, "leaving", lease_seconds=30, tick_seconds=0.02)
    staying = workers(repository, "staying", lease_seconds=30, tick_seconds=0.02)
    finished = threading.Event()

    def until_stopped(op_id: str, job_input: dict) -> None:
        while leaving.keeps(op_id):
            threading.Event().wait(0.01)
        raise HandBack

    leaving.handle(IMPORT, until_stopped)
    staying.handle(IMPORT, lambda op_id, job_input: finished.set())
    leaving.queue(op_id, IMPORT, {}, status="importer_importing_started")
    leaving.start()
    try:
        assert wait_until(lambda: repository.running_jobs([IMPORT]) == 1)
        leaving.shutdown()
        staying.start()
        assert finished.wait(10)
    finally:
        leaving.shutdown()
        staying.shutdown()


def test_an_operation_cut_off_with_nobody_to_go_on_is_ended_when_workers_start(repository):
    op_id = operation(repository, "importer_uploading")
    ended: list[str] = []
    starting = workers(repository, "w1", **FAST)
    starting.on_abandoned(lambda operation: ended.append(operation["_id"]))
    starting.start()
    try:
        assert ended == [op_id]
    finally:
        starting.shutdown()


def test_an_operation_held_while_its_file_arrives_is_let_go_once_it_needs_nobody(repository):
    op_id = operation(repository)
    records = OperationRecords(repository)
    holding = ImportWorkers(records, repository, staging=None, worker_id="w1", **FAST)
    records.listen(holding.status_stored)
    holding.hold(op_id)
    records.update(op_id, status="importer_uploading")
    assert repository.abandoned(["importer_uploading"]) == []
    records.update(op_id, status="importer_import_failed")
    records.update(op_id, status="importer_uploading")
    # No longer held: a worker would now find it cut off.
    assert [op["_id"] for op in repository.abandoned(["importer_uploading"])] == [op_id]
