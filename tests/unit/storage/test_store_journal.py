"""Download records are journaled: a save costs one appended line, whatever the history holds,
and no crash at any point of appending or folding the journal loses or reverts a record."""

from __future__ import annotations

import errno
import os
import random
import textwrap

import pytest

from storage import store as store_module
from storage.downloads import DownloadRepository
from storage.store import Store
from tests.support.kills import acknowledged_before_kill


def record(record_id: str, status: str = "completed", **extra) -> dict:
    return {"id": record_id, "status": status, "start_time": 50, "end_time": 100, **extra}


def reopened(state) -> dict[str, dict]:
    store = Store(state)
    try:
        return {r["id"]: r for r in DownloadRepository(store)._table.all()}
    finally:
        store.close()


def test_a_save_appends_one_line_and_leaves_the_main_file_alone(tmp_path):
    state = tmp_path / "state"
    folding_often = Store(state, journal_compact_min_bytes=0)
    for i in range(300):
        DownloadRepository(folding_often).save(record(f"old{i}", url=f"https://example.com/{i}"))
    folding_often.close()
    store = Store(state)
    repository = DownloadRepository(store)
    main_file = state / "downloads.json"
    journal = state / "downloads.journal"
    before, journal_before = main_file.read_bytes(), journal.stat().st_size
    repository.save(record("new", "downloading"))
    assert main_file.read_bytes() == before
    appended = journal.stat().st_size - journal_before
    assert 0 < appended < 400
    store.close()
    records = reopened(state)
    assert len(records) == 301 and records["new"]["status"] == "downloading"


def test_removals_are_journaled_too(tmp_path):
    state = tmp_path / "state"
    store = Store(state)
    repository = DownloadRepository(store)
    for i in range(5):
        repository.save({**record(f"r{i}"), "end_time": 100 + i})
    assert repository.prune_history(2) == 3
    store.close()
    assert sorted(reopened(state)) == ["r3", "r4"]


def test_a_large_journal_is_folded_into_the_main_file(tmp_path):
    state = tmp_path / "state"
    store = Store(state, journal_compact_min_bytes=2000)
    repository = DownloadRepository(store)
    for i in range(40):
        repository.save(record(f"r{i % 5}", "downloading" if i % 2 else "completed", n=i))
    # Never more than one fold's worth of lines waits to be read back.
    assert (state / "downloads.journal").stat().st_size < 2000 + 1000
    store.close()
    records = reopened(state)
    assert {r["n"] for r in records.values()} == {35, 36, 37, 38, 39}


def test_lines_older_than_the_main_file_do_not_revert_it(tmp_path):
    state = tmp_path / "state"
    store = Store(state)
    DownloadRepository(store).save(record("a", "downloading"))
    stale_journal = (state / "downloads.journal").read_bytes()
    assert stale_journal
    store.close()
    store = Store(state, journal_compact_min_bytes=0)
    DownloadRepository(store).save(record("a", "completed"))
    assert (state / "downloads.journal").stat().st_size == 0  # folded
    store.close()
    # A crash between writing the main file and emptying the journal leaves it like this.
    (state / "downloads.journal").write_bytes(stale_journal)
    assert reopened(state)["a"]["status"] == "completed"


@pytest.mark.parametrize(
    "leftover",
    [
        b'{"seq": 99, "table": "downloads", "id": "torn", "doc": {"id": "to',
        b'[1, 2]\n{"seq": "x", "table": "downloads", "id": "b", "doc": {}}\n{}\n',
    ],
    ids=["a line a crash cut short", "json that is not an entry"],
)
def test_what_is_not_a_whole_entry_is_dropped_and_later_lines_still_count(tmp_path, leftover):
    state = tmp_path / "state"
    store = Store(state)
    DownloadRepository(store).save(record("a"))
    store.close()
    with (state / "downloads.journal").open("ab") as journal:
        journal.write(leftover)
    store = Store(state)
    DownloadRepository(store).save(record("c"))
    store.close()
    assert sorted(reopened(state)) == ["a", "c"]


def test_a_failed_append_fails_the_save_and_the_next_save_keeps_everything(tmp_path, monkeypatch):
    state = tmp_path / "state"
    store = Store(state)
    repository = DownloadRepository(store)
    repository.save(record("a"))
    real_append = store_module.append_durably

    def full_disk(fd, data, offset, **options):
        # Half the line reaches the file before the disk is full.
        os.pwrite(fd, data[: len(data) // 2], offset)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module, "append_durably", full_disk)
    with pytest.raises(OSError):
        repository.save(record("b"))
    monkeypatch.setattr(store_module, "append_durably", real_append)
    repository.save(record("c"))
    store.close()
    assert sorted(reopened(state)) == ["a", "b", "c"]


WRITER = textwrap.dedent(
    """
    import sys
    from storage.downloads import DownloadRepository
    from storage.store import Store
    # Fold often, so that kills land in folds too.
    repository = DownloadRepository(Store(sys.argv[1], journal_compact_min_bytes=3000))
    i = 0
    while True:
        record_id = f"r{i % 7}"
        repository.save({"id": record_id, "status": "downloading", "n": i, "pad": "x" * (i % 300)})
        print(f"ack {record_id} {i}", flush=True)
        i += 1
    """
)


@pytest.mark.slow
def test_sigkill_at_random_moments_never_loses_or_reverts_an_acknowledged_save(tmp_path):
    state = tmp_path / "state"
    rng = random.Random(4321)
    for _ in range(15):
        newest = {
            record_id: int(n) for record_id, n in acknowledged_before_kill(WRITER, state, rng)
        }
        assert newest, "the writer never acknowledged a save"
        records = reopened(state)
        for record_id, n in newest.items():
            # Saves acknowledged after the last ack read here may have landed; older never.
            assert records[record_id]["n"] >= n, f"{record_id} lost or reverted"
        for leftover in state.iterdir():
            leftover.unlink()


def test_reading_an_empty_history_again_and_again_keeps_one_journal_open(tmp_path):
    store = Store(tmp_path / "state")
    repository = DownloadRepository(store)
    journal = str(tmp_path / "state" / "downloads.journal")

    def journals_open() -> int:
        count = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                count += os.readlink(f"/proc/self/fd/{fd}") == journal
            except FileNotFoundError:
                continue  # the descriptor listdir itself used
        return count

    repository._table.all()
    for _ in range(50):
        assert repository._table.all() == []
    assert journals_open() == 1
    store.close()
    assert journals_open() == 0
