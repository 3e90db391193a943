"""Work on import operations as jobs: queued with the step it moves to, claimed by one
worker at a time, held by a lease; a lease that runs out lets another worker take the
job over, and an operation nobody holds or may claim is found abandoned. On both
backends."""

from __future__ import annotations

from tests.unit.storage.conftest import claimed_by_two_workers

# A lease that has run out the moment it is taken: a worker that died at once.
RUN_OUT = -1.0
LEASE = 60.0
BUSY = ("importer_preparing_started", "importer_importing_started", "importer_uploading")


def operation(op_id: str, ts: str, status: str = "importer_new") -> dict:
    return {
        "_id": op_id,
        "ts": ts,
        "_updatedAt": ts,
        "status": status,
        "valid": True,
        "importerKey": "csv",
    }


def test_a_queued_job_moves_the_step_and_goes_to_one_worker_only(repos):
    operations = repos.operations
    for number in range(4):
        operations.insert(operation(f"op{number}", f"2026-01-0{number + 1}"))
        queued = operations.queue_job(
            f"op{number}", "import", {"user_id": "u1"}, {"status": "importer_importing_started"}
        )
        assert queued["status"] == "importer_importing_started"

    def claim_one(worker: str) -> str | None:
        claim = operations.claim_job(worker, LEASE, ["import"])
        return None if claim is None else claim.operation["_id"]

    assert sorted(claimed_by_two_workers(claim_one)) == ["op0", "op1", "op2", "op3"]
    assert operations.get("op2")["status"] == "importer_importing_started"


def test_jobs_are_claimed_oldest_first_and_only_of_the_kinds_asked_for(repos):
    operations = repos.operations
    for op_id in ("first", "second", "third"):
        operations.insert(operation(op_id, "2026-01-01"))
    operations.queue_job("first", "pending-files", {"user_id": "u"}, {})
    operations.queue_job("second", "prepare", {"file": "a.zip"}, {})
    operations.queue_job("third", "import", {"user_id": "u"}, {})
    claim = operations.claim_job("w1", LEASE, ["prepare", "import"])
    assert (claim.operation["_id"], claim.job, claim.job_input) == (
        "second",
        "prepare",
        {"file": "a.zip"},
    )
    assert claim.previous_worker is None
    assert operations.claim_job("w1", LEASE, ["import"]).operation["_id"] == "third"
    assert operations.claim_job("w1", LEASE, ["import", "prepare"]) is None
    assert operations.running_jobs(["prepare", "import"]) == 2
    assert operations.running_jobs(["pending-files"]) == 0


def test_a_job_whose_lease_ran_out_is_taken_over_and_says_from_whom(repos):
    operations = repos.operations
    operations.insert(operation("op1", "2026-01-01"))
    operations.queue_job(
        "op1", "import", {"user_id": "u"}, {"status": "importer_importing_started"}
    )
    assert operations.claim_job("dead", RUN_OUT, ["import"]).previous_worker is None
    taken = operations.claim_job("alive", LEASE, ["import"])
    assert (taken.operation["_id"], taken.previous_worker) == ("op1", "dead")
    # The dead worker's renewal and its letting go change nothing now.
    assert operations.renew("dead", ["op1"], LEASE) == set()
    operations.let_go("op1", "dead", keep_job=False)
    assert operations.running_jobs(["import"]) == 1
    assert operations.renew("alive", ["op1"], LEASE) == {"op1"}


def test_a_job_handed_back_is_claimable_at_once_and_a_finished_one_never_again(repos):
    operations = repos.operations
    operations.insert(operation("op1", "2026-01-01"))
    operations.queue_job("op1", "prepare", {"file": "x"}, {})
    operations.claim_job("stopping", LEASE, ["prepare"])
    assert operations.claim_job("other", LEASE, ["prepare"]) is None
    operations.let_go("op1", "stopping", keep_job=True)
    claim = operations.claim_job("other", LEASE, ["prepare"])
    assert claim.operation["_id"] == "op1"
    operations.let_go("op1", "other", keep_job=False)
    assert operations.claim_job("other", LEASE, ["prepare"]) is None
    assert operations.running_jobs(["prepare"]) == 0


def test_only_busy_operations_that_nobody_holds_or_may_claim_are_abandoned(repos):
    operations = repos.operations
    operations.insert(operation("held", "2026-01-01", "importer_uploading"))
    operations.insert(operation("left", "2026-01-02", "importer_uploading"))
    operations.insert(operation("queued", "2026-01-03"))
    operations.insert(operation("idle", "2026-01-04", "importer_user_selection"))
    operations.insert(operation("died", "2026-01-05", "importer_preparing_started"))
    operations.insert({**operation("cleared", "2026-01-06", "importer_uploading"), "valid": False})
    operations.hold("held", "w1", LEASE)
    operations.hold("died", "w2", RUN_OUT)
    operations.queue_job("queued", "prepare", {"file": "x"}, {"status": "importer_file_loaded"})
    found = {op["_id"] for op in operations.abandoned([*BUSY, "importer_file_loaded"])}
    assert found == {"left", "died"}


def test_a_held_operation_stays_held_while_renewed(repos):
    operations = repos.operations
    operations.insert(operation("op1", "2026-01-01", "importer_uploading"))
    operations.hold("op1", "w1", RUN_OUT)
    assert [op["_id"] for op in operations.abandoned(BUSY)] == ["op1"]
    assert operations.renew("w1", ["op1", "unknown"], LEASE) == {"op1"}
    assert operations.abandoned(BUSY) == []


def test_queueing_an_unknown_operation_queues_nothing(repos):
    operations = repos.operations
    assert (
        operations.queue_job("nope", "import", {}, {"status": "importer_importing_started"}) is None
    )
    assert operations.claim_job("w1", LEASE, ["import"]) is None
