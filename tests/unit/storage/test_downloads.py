"""Download records survive restarts and come back in the promised order."""

from __future__ import annotations

from storage.downloads import DownloadRepository
from storage.store import Store

pytest_plugins = ("tests.support.download_fixtures",)


def record(record_id: str, status: str = "completed", end_time: int | None = 100, **extra) -> dict:
    return {"id": record_id, "status": status, "start_time": 50, "end_time": end_time, **extra}


def test_save_replaces_the_whole_record(repos):
    repository = repos.downloads
    repository.save(record("a", "downloading", None, speed_hint=1))
    repository.save(record("a", "completed", 120, total_bytes=5))
    assert repository.get("a") == record("a", "completed", 120, total_bytes=5)


def test_records_handed_out_are_copies(repos):
    repository = repos.downloads
    repository.save(record("a", _local={"part_path": "/x"}))
    copy = repository.get("a")
    copy["_local"]["part_path"] = "/elsewhere"
    copy["status"] = "failed"
    assert repository.get("a")["_local"] == {"part_path": "/x"}
    assert repository.get("a")["status"] == "completed"


def test_history_is_finished_records_newest_first(repos):
    repository = repos.downloads
    repository.save(record("old", end_time=100))
    repository.save(record("running", "downloading", None))
    repository.save(record("new", "failed", 300))
    repository.save(record("mid", "cancelled", 200))
    # Same second: the finishing order recorded by the manager decides.
    repository.save(record("tie-first", end_time=300, _local={"finished_ns": 1}))
    repository.save(record("tie-second", end_time=300, _local={"finished_ns": 2}))
    ids = [r["id"] for r in repository.history()]
    assert ids == ["tie-second", "tie-first", "new", "mid", "old"]
    assert [r["id"] for r in repository.history(limit=2)] == ["tie-second", "tie-first"]


def test_unfinished_finds_starting_downloading_and_paused(repos):
    repository = repos.downloads
    repository.save(record("q", "starting", None))
    repository.save(record("d", "downloading", None))
    repository.save(record("p", "paused", None))
    repository.save(record("c"))
    assert sorted(r["id"] for r in repository.unfinished()) == ["d", "p", "q"]


def test_unfinished_follows_a_record_into_and_out_of_the_active_statuses(repos):
    repository = repos.downloads
    repository.save(record("old"))
    assert repository.unfinished() == []
    for status in ("starting", "downloading", "paused", "downloading"):
        repository.save(record("a", status, None))
        assert [(r["id"], r["status"]) for r in repository.unfinished()] == [("a", status)]
    repository.save(record("a", "completed", 120))
    assert repository.unfinished() == []
    assert repository.claim_next("w", 30) is None


def test_a_reopened_store_lists_what_was_active_in_it(tmp_path):
    first = Store(tmp_path / "state", fsync=False)
    repository = DownloadRepository(first)
    for number in range(3):
        repository.save(record(f"done{number}"))
    repository.save(record("paused", "paused", None))
    repository.save(record("running", "downloading", None))
    first.close()
    second = Store(tmp_path / "state", fsync=False)
    try:
        reopened = DownloadRepository(second)
        assert sorted(r["id"] for r in reopened.unfinished()) == ["paused", "running"]
        assert reopened.count_runnable() == 1
    finally:
        second.close()


def test_prune_keeps_the_newest_finished_and_every_unfinished(repos):
    repository = repos.downloads
    for number in range(5):
        repository.save(record(f"r{number}", end_time=100 + number))
    repository.save(record("live", "downloading", None))
    assert repository.prune_history(2) == 3
    assert [r["id"] for r in repository.history()] == ["r4", "r3"]
    assert repository.get("live") is not None
    assert repository.prune_history(2) == 0


def test_records_survive_reopening(tmp_path):
    first = Store(tmp_path / "state", fsync=False)
    DownloadRepository(first).save(record("kept", url="https://example.com/a"))
    first.close()
    second = Store(tmp_path / "state", fsync=False)
    try:
        assert DownloadRepository(second).get("kept")["url"] == "https://example.com/a"
    finally:
        second.close()


def _blocking_disk(monkeypatch):
    """Make the store's disk writes wait for `release`; `writing` is set while one waits."""
    import threading

    from storage import store as store_module

    writing, release, writes = threading.Event(), threading.Event(), []
    real_append = store_module.append_durably

    def slow_append(fd, data, offset, **options):
        writes.append(data)
        writing.set()
        assert release.wait(10)
        real_append(fd, data, offset, **options)

    monkeypatch.setattr(store_module, "append_durably", slow_append)
    return writing, release, writes


def test_readers_neither_wait_for_the_disk_nor_see_what_is_not_on_it(store, monkeypatch):
    import threading

    repository = DownloadRepository(store)
    repository.save(record("a", "downloading", None))
    writing, release, _ = _blocking_disk(monkeypatch)
    saver = threading.Thread(target=repository.save, args=(record("a", "completed", 120),))
    saver.start()
    assert writing.wait(10)
    # The change is in memory but not yet durable: shown as it was, and at once.
    assert repository.get("a")["status"] == "downloading"
    assert repository.history() == []
    assert [r["id"] for r in repository.unfinished()] == ["a"]
    release.set()
    saver.join(10)
    assert repository.get("a")["status"] == "completed"
    assert [r["id"] for r in repository.history()] == ["a"]


def test_saves_at_the_same_time_share_disk_writes_and_all_survive(tmp_path, monkeypatch):
    import threading

    first = Store(tmp_path / "state", fsync=False)
    repository = DownloadRepository(first)
    repository.save(record("seed"))
    writing, release, writes = _blocking_disk(monkeypatch)
    savers = [
        threading.Thread(target=repository.save, args=(record(f"r{i}", end_time=100 + i),))
        for i in range(8)
    ]
    savers[0].start()
    assert writing.wait(10)
    for saver in savers[1:]:
        saver.start()
    release.set()
    for saver in savers:
        saver.join(10)
    assert len(writes) < len(savers)
    first.close()
    reopened = Store(tmp_path / "state", fsync=False)
    try:
        ids = {r["id"] for r in DownloadRepository(reopened).history()}
        assert ids == {"seed", *(f"r{i}" for i in range(8))}
    finally:
        reopened.close()


def test_a_save_that_does_not_wait_lands_with_the_next_one_that_does(tmp_path):
    first = Store(tmp_path / "state")
    repository = DownloadRepository(first)
    repository.save(record("a", "starting", None))
    repository.save(record("a", "downloading", None, filename="named.bin"), wait=False)
    # Not on disk yet, so not shown: a crash now would find the record as it was.
    assert repository.get("a")["status"] == "starting"
    repository.save(record("b", "starting", None))
    assert repository.get("a")["filename"] == "named.bin"
    first.close()
    reopened = Store(tmp_path / "state")
    try:
        assert DownloadRepository(reopened).get("a")["status"] == "downloading"
    finally:
        reopened.close()
