"""Keeps glibc's malloc from holding on to memory the server has finished with.

Measured with `bench/load.py --memory-snapshots` (README, "Benchmarks"): over repeated
runs of downloads, an import and API traffic on one server, the memory Python and
glibc had in use grew by about 0.3 MB a run (the download history), while the free
memory glibc kept grew by 7, 3, 3 and 3 MB, spread over 16 arenas. glibc gives a
thread its own arena when the others are busy, up to 8 per core; the download
threads, the handlers' thread pool and the import worker soon use them all, and free
space in one arena is not used by the threads attached to another. Python threads
mostly allocate while holding the GIL, one at a time, so two arenas are enough.

`release_free_memory()` gives glibc's free pages back to the system (malloc_trim).
Callers use it when work that allocated a lot has ended (a prepare or an import, the
last download of a burst), so the size at rest is what is in use.

Both are no-ops where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
from collections.abc import Callable

# mallopt's parameter number for the arena limit (malloc.h: M_ARENA_MAX).
_M_ARENA_MAX = -8
ARENAS = 2


@functools.cache
def glibc() -> ctypes.CDLL | None:
    """This process's C library if it is glibc, else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not all(hasattr(libc, name) for name in ("mallopt", "malloc_trim", "gnu_get_libc_version")):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


def limit_arenas(environ: dict[str, str], arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process; call before threads start.

    An operator's own MALLOC_ARENA_MAX (or glibc.malloc.arena_max tunable) wins.
    Returns whether the cap was set here.
    """
    if "MALLOC_ARENA_MAX" in environ or "arena_max" in environ.get("GLIBC_TUNABLES", ""):
        return False
    libc = glibc()
    return bool(libc is not None and libc.mallopt(_M_ARENA_MAX, arenas))


def release_free_memory() -> bool:
    """Give glibc's free pages back to the system; True if any were given back.

    ctypes releases the GIL for the call, so Python threads go on meanwhile.
    """
    libc = glibc()
    return bool(libc is not None and libc.malloc_trim(0))


class PeriodicRelease:
    """Calls `release_free_memory()` every `interval` seconds while the server runs.

    Work that ends without a hook of its own (uploads, file reads, zips, API traffic)
    leaves free pages in glibc's heap: measured after 1,000 uploads and downloads of
    64 KiB and one 256 MiB upload, the server held 100 MB, and 84 MB once they were given
    back. A trim costs a few milliseconds, so doing it every few seconds is cheap.
    """

    def __init__(self, interval: float = 5.0, release: Callable[[], bool] = release_free_memory):
        self.interval = interval
        self._release = release
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None or glibc() is None:
            return
        self._thread = threading.Thread(target=self._run, name="ferry-memory", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._release()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
