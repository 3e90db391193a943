"""A job's progress is told at most twice a second, however often bytes arrive."""

from __future__ import annotations

from pathlib import Path

from ferry.downloads.fetch_types import TransferTuning
from ferry.downloads.jobs import PROGRESS_EVENT_INTERVAL, DownloadHandle, Job
from ferry.downloads.policy import FetchPolicy


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def job_with(clock: Clock, told: list) -> Job:
    record = {"id": "d1", "status": "downloading", "expected_size": 1000}
    job = Job(
        record,
        Path("."),
        FetchPolicy(),
        None,
        DownloadHandle("d1", lambda _: None),
        None,
        tuning=TransferTuning(),
        clock=clock,
    )
    job.progress_told = job.sample_time = clock.now
    job.on_progress = lambda j: told.append(j.current)
    return job


def test_progress_is_told_at_most_once_per_interval():
    clock, told = Clock(), []
    job = job_with(clock, told)
    for size in range(1, 101):
        job.progress(size)  # a burst of chunks at one instant
    assert told == []
    clock.now += PROGRESS_EVENT_INTERVAL
    job.progress(150)
    job.progress(160)
    assert told == [150]
    for step in range(10):  # ten intervals of chunks every tenth of one
        for _ in range(10):
            clock.now += PROGRESS_EVENT_INTERVAL / 10
            job.progress(200 + step)
    assert 9 <= len(told) - 1 <= 10
    assert PROGRESS_EVENT_INTERVAL <= 0.5  # the contract: at most two a second


def test_no_listener_no_calls():
    clock = Clock()
    job = job_with(clock, [])
    job.on_progress = None
    clock.now += 10
    job.progress(5)
    assert job.current == 5
