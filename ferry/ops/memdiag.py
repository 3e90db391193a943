"""Opt-in memory diagnostics for `ferry serve`; off unless FERRY_MEMORY_DIAGNOSTICS is set.

With FERRY_MEMORY_DIAGNOSTICS=<directory>, each SIGUSR1 (the n-th counted from 0) writes

    <directory>/snapshot-<n>.json        RSS, glibc's and Python's allocator figures,
                                         threads, live objects by type
    <directory>/snapshot-<n>.malloc.xml  glibc's malloc_info: each arena's sizes
    <directory>/snapshot-<n>.tracemalloc the Python allocations alive now (only with
                                         FERRY_MEMORY_TRACE=<frames>; tracing slows the
                                         server several times and costs memory itself)

then `<directory>/snapshot-<n>.done`, so a caller knows the files are whole.
While tracing, Python's allocator has no statistics to report (its figures read 0).
`bench/load.py --memory-snapshots` takes one before the first run and one after each.
Linux with glibc only (/proc, mallinfo2, malloc_info).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import json
import os
import signal
import sys
import tempfile
import threading
import tracemalloc
from collections import Counter
from pathlib import Path

from ferry.ops import allocator

ENV = "FERRY_MEMORY_DIAGNOSTICS"
TRACE_ENV = "FERRY_MEMORY_TRACE"
# Object types listed in a snapshot: the most numerous ones.
TOP_TYPES = 40


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def malloc_stats() -> dict[str, int]:
    """glibc's mallinfo2 over all arenas, in bytes: `arena` taken from the system (not
    counting big blocks), `uordblks` of it in use, `fordblks` free but kept, `hblkhd`
    in big blocks mapped on their own. Empty without glibc 2.33+."""
    libc = allocator.glibc()
    mallinfo2 = getattr(libc, "mallinfo2", None)
    if mallinfo2 is None:
        return {}
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return {name: getattr(info, name) for name, _ in _MallInfo2._fields_}


def malloc_info(path: Path) -> int:
    """Write glibc's malloc_info XML (one <heap> per arena) to `path`; returns the arenas."""
    libc = allocator.glibc()
    if libc is None or not hasattr(libc, "malloc_info"):
        return 0
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    handle = libc.fopen(str(path).encode(), b"w")
    if not handle:
        return 0
    libc.malloc_info(0, handle)
    libc.fclose(handle)
    return path.read_text().count("<heap nr=")


def pymalloc_stats() -> dict[str, int]:
    """Python's small-object allocator: arenas it holds and bytes in use, from the
    report `sys._debugmallocstats()` writes to the C stderr."""
    with tempfile.TemporaryFile(mode="w+") as report:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(report.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        report.seek(0)
        text = report.read()
    wanted = {
        "arenas allocated current": "arenas",
        "arenas allocated total": "arenas_ever",
        "arenas reclaimed": "arenas_reclaimed",
        "arenas highwater mark": "arenas_highwater",
        "bytes in allocated blocks": "used",
        "bytes in available blocks": "free_in_pools",
    }
    found: dict[str, int] = {}
    for line in text.splitlines():
        label, _, value = line.rpartition("=")
        label = label.strip().lstrip("#").strip()
        if label in wanted and wanted[label] not in found:
            with contextlib.suppress(ValueError):
                found[wanted[label]] = int(value.strip().replace(",", ""))
    return found


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


def figures() -> dict:
    objects = gc.get_objects()
    types = Counter(type(o).__qualname__ for o in objects)
    del objects
    traced, peak = tracemalloc.get_traced_memory() if tracemalloc.is_tracing() else (0, 0)
    return {
        "rss": _status("VmRSS") * 1024,
        "rss_anon": _status("RssAnon") * 1024,
        "threads": threading.active_count(),
        "os_threads": _status("Threads"),
        "malloc": malloc_stats(),
        "pymalloc": pymalloc_stats(),
        "allocated_blocks": sys.getallocatedblocks(),
        "traced": traced,
        "traced_peak": peak,
        "gc_objects": sum(types.values()),
        "types": dict(types.most_common(TOP_TYPES)),
    }


def install_from_env(environ: dict[str, str]) -> Path | None:
    """Install the SIGUSR1 dump (and start tracing) as the variables ask."""
    target = environ.get(ENV)
    if not target:
        return None
    directory = Path(target)
    directory.mkdir(parents=True, exist_ok=True)
    frames = int(environ.get(TRACE_ENV) or 0)
    if frames > 0:
        tracemalloc.start(frames)
    taken = [0]

    def dump(*_) -> None:
        stem = directory / f"snapshot-{taken[0]}"
        taken[0] += 1
        gc.collect()
        if tracemalloc.is_tracing():
            tracemalloc.take_snapshot().dump(f"{stem}.tracemalloc")
        numbers = figures()
        numbers["arenas"] = malloc_info(Path(f"{stem}.malloc.xml"))
        Path(f"{stem}.json").write_text(json.dumps(numbers, indent=1))
        Path(f"{stem}.done").touch()

    signal.signal(signal.SIGUSR1, dump)
    return directory


def summary(path: Path) -> str:
    """One line of a snapshot's figures, in MiB."""
    numbers = json.loads(path.read_text())
    mib = 1 << 20
    malloc, pymalloc = numbers["malloc"], numbers["pymalloc"]
    return (
        f"RSS {numbers['rss'] / mib:.1f}; glibc: {numbers['arenas']} arenas,"
        f" {malloc.get('arena', 0) / mib:.1f} held, {malloc.get('uordblks', 0) / mib:.1f} in use,"
        f" {malloc.get('fordblks', 0) / mib:.1f} free, {malloc.get('hblkhd', 0) / mib:.1f} big;"
        f" pymalloc: {pymalloc.get('arenas', 0)} arenas, {pymalloc.get('used', 0) / mib:.1f} used;"
        f" {numbers['gc_objects']} objects, {numbers['os_threads']} threads"
    )


def compare_types(older: Path, newer: Path, top: int = 10) -> list[str]:
    """Object types whose live count changed most between two snapshots."""
    before = json.loads(older.read_text())["types"]
    after = json.loads(newer.read_text())["types"]
    changes = {name: after.get(name, 0) - before.get(name, 0) for name in before.keys() | after}
    biggest = sorted(changes.items(), key=lambda item: -abs(item[1]))[:top]
    return [f"{change:+7d} {name} (now {after.get(name, 0)})" for name, change in biggest if change]


def compare(older: Path, newer: Path, top: int = 15, key: str = "traceback") -> list[str]:
    """Python allocations that grew between two .tracemalloc snapshots, biggest first."""
    before = tracemalloc.Snapshot.load(str(older))
    after = tracemalloc.Snapshot.load(str(newer))
    lines = []
    for stat in after.compare_to(before, key)[:top]:
        lines.append(
            f"{stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks"
            f" (now {stat.size / 1024:.1f} KiB)"
        )
        frames = stat.traceback.format(limit=6 if key == "traceback" else 1, most_recent_first=True)
        lines.extend("      " + frame.strip() for frame in frames if frame.strip())
    return lines
