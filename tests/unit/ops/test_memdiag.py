"""The opt-in memory snapshots that bench/load.py asks a live server for."""

from __future__ import annotations

import json
import os
import signal

from ferry.ops import memdiag


class _Kept:
    """Objects the snapshot must count by type."""


def test_off_unless_asked():
    assert memdiag.install_from_env({}) is None


def test_each_sigusr1_writes_a_whole_numbered_snapshot(tmp_path):
    previous = signal.getsignal(signal.SIGUSR1)
    try:
        directory = memdiag.install_from_env({memdiag.ENV: str(tmp_path / "snaps")})
        kept = [_Kept() for _ in range(100_000)]
        os.kill(os.getpid(), signal.SIGUSR1)
        kept.extend(_Kept() for _ in range(50_000))
        os.kill(os.getpid(), signal.SIGUSR1)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert (directory / "snapshot-0.done").exists() and (directory / "snapshot-1.done").exists()
    first = json.loads((directory / "snapshot-0.json").read_text())
    assert first["rss"] > 0 and first["types"]["_Kept"] >= 100_000
    assert "RSS" in memdiag.summary(directory / "snapshot-1.json")
    growth = memdiag.compare_types(directory / "snapshot-0.json", directory / "snapshot-1.json")
    assert any(line.split()[0] == "+50000" and "_Kept" in line for line in growth)
