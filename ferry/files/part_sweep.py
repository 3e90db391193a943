"""Removing the part files of uploads nobody finished.

A `PATCH` upload keeps its part file between requests so that its client can go on
later, and a `PUT` cut off by a crash leaves its part behind; either would hold disk
space for ever. An upload being written holds an exclusive `flock` on its part file,
so the sweep takes the same lock before removing one, and removes only a part still
untouched for the whole time to live once it holds the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import stat
import threading
import time
from pathlib import Path

from ferry.files.edits import PART_PREFIX

log = logging.getLogger(__name__)

# An upload's part file exactly (a PATCH's fixed name, or a PUT's with its random tail),
# never a download's part file of a file whose name happens to start the same way.
UPLOAD_PART = re.compile(re.escape(PART_PREFIX) + r"[0-9a-f]{32}(-[0-9a-f]{12})?")

# How often a running server sweeps.
SWEEP_INTERVAL_SECONDS = 3600


def _remove_if_abandoned(path: str, cutoff: float) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # an upload is writing it
        held = os.fstat(fd)
        if not stat.S_ISREG(held.st_mode) or held.st_mtime > cutoff:
            return False
        try:
            named = os.lstat(path)
        except FileNotFoundError:
            return False
        # The name must still be the file locked, not one an upload made meanwhile.
        if (named.st_dev, named.st_ino) != (held.st_dev, held.st_ino):
            return False
        os.unlink(path)
        return True
    finally:
        os.close(fd)


def sweep_abandoned_parts(root: Path, ttl: float, now: float | None = None) -> list[Path]:
    """Removes upload part files below `root` untouched for `ttl` seconds and not being
    written; the paths removed. Symlinks are never followed."""
    cutoff = (time.time() if now is None else now) - ttl
    removed = []
    for directory, _, names in os.walk(root):
        for name in names:
            if not UPLOAD_PART.fullmatch(name):
                continue
            path = os.path.join(directory, name)
            with contextlib.suppress(OSError):
                if _remove_if_abandoned(path, cutoff):
                    removed.append(Path(path))
    return removed


class PartSweeper:
    """Sweeps `root` on its own thread as soon as started (a large tree never delays the
    server's start), then every `interval` seconds until stopped."""

    def __init__(self, root: Path, ttl: float, interval: float = SWEEP_INTERVAL_SECONDS):
        self.root = root
        self.ttl = ttl
        self.interval = interval
        self.sweeps = 0
        self._swept = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="ferry-part-sweep", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                removed = sweep_abandoned_parts(self.root, self.ttl)
            except OSError:
                log.exception("sweeping upload part files failed")
            else:
                if removed:
                    log.info("removed %d abandoned upload part file(s)", len(removed))
            with self._swept:
                self.sweeps += 1
                self._swept.notify_all()
            self._stop.wait(self.interval)

    def wait_for_sweeps(self, count: int, timeout: float) -> bool:
        """Whether `count` sweeps have run, waiting up to `timeout` seconds for them."""
        with self._swept:
            return self._swept.wait_for(lambda: self.sweeps >= count, timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
