"""Transfers yield the processor to requests.

Each thread that moves or hashes a download's bytes lowers its own scheduling priority
(on Linux every thread has a nice value of its own). While downloads keep every core
busy, the event loop answering requests, and other programs on the machine, are served
first; the downloads take the processor time that is left, which on an idle machine is
all of it. A server with many downloads running stays quick to answer.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

TRANSFER_NICENESS = 10


def yield_to_requests() -> None:
    """Lower the calling thread's priority to TRANSFER_NICENESS, unless it is lower
    already. Linux only: elsewhere the call would lower the whole process."""
    if not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        if os.getpriority(os.PRIO_PROCESS, thread) < TRANSFER_NICENESS:
            os.setpriority(os.PRIO_PROCESS, thread, TRANSFER_NICENESS)
