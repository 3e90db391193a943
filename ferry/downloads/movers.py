"""Body movers: helper processes that receive, hash and write download bodies.

Python runs one thread of a process at a time. A download moved in turn by its own
thread needs that turn between every read, hash and write, and the server's other
Python (requests, records, events) holds it for a millisecond or more per download:
with many downloads at once on a few cores, the transfers then wait for each other
more than for the network or the disk. A body handed to a mover runs in another
process, whose only Python is that loop.

A job hands the mover the socket and the part file (descriptors passed over a Unix
socket); the calling thread waits for the outcome without holding the lock, and turns
the mover's progress into the transfer's. Cancel, pause and the deadlines work as they
do in-process: the watchdog shuts the socket down, and the mover, reading end of body,
writes what it received and stops. The processes start when a body first needs them
(`enable`, which only the server calls, allows it). A mover that dies takes its
channels with it: bodies move in-process until a new one has started, which a body
finding no free mover does (not more often than every RESTART_SECONDS).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ferry.downloads import mover_process
from ferry.downloads.mover_process import MESSAGE_SIZE

log = logging.getLogger("ferry.downloads.movers")

# A mover's Python runs for microseconds between the reads, hashes and writes that
# release its lock, so one keeps several cores busy: one process took a batch of 16
# bodies at once on 2 cores as fast as two did, in 17 MB less.
CORES_PER_MOVER = 4
# How long a stopping server waits for a mover to end before killing it.
STOP_SECONDS = 5.0
# A mover that died is replaced when a body next finds no free one, but not sooner than
# this after the last start: one that cannot start must not be started again and again.
RESTART_SECONDS = 5.0
# The directory `ferry` is imported from, for the movers' import path.
_IMPORT_ROOT = str(Path(__file__).resolve().parents[2])


def processes_for(cores: int) -> int:
    """How many movers serve a machine with `cores` cores."""
    return max(1, -(-cores // CORES_PER_MOVER))


class MoverBroken(Exception):
    """The mover serving a channel is gone; the body it was moving is cut short."""


class BodyMovers:
    """`processes` helper processes serving `channels` bodies at once between them.

    Thread-safe. Builds nothing on construction; the processes start at the first
    `try_move` after `enable()`, and end on `stop()`.
    """

    def __init__(self, processes: int, channels: int):
        self._channel_count = max(1, channels)
        self._processes = min(max(1, processes), self._channel_count)
        self._enabled = False
        self._started_at: float | None = None
        self._children: list[subprocess.Popen] = []
        self._free: queue.SimpleQueue[socket.socket] = queue.SimpleQueue()
        self._all: list[socket.socket] = []
        self._lock = threading.Lock()

    def enable(self) -> None:
        """Let bodies go to movers from now on (the server's start)."""
        self._enabled = True

    def try_move(
        self, job: dict, fds: list[int], on_progress: Callable[[int], None]
    ) -> dict | None:
        """Hand `job` with its descriptors to a free mover, report each file position it
        tells, and answer its outcome; None when no mover is free (not enabled, all
        busy, or gone), and nothing was handed over.

        Raises MoverBroken when the mover went away during the job."""
        if not self._enabled:
            return None
        while True:
            channel = self._free_channel()
            if channel is None:
                return None
            try:
                socket.send_fds(channel, [json.dumps(job).encode()], fds)
            except OSError:
                # Its mover is gone, and took nothing: try the next one.
                log.warning("a body mover has stopped; another starts when a body needs one")
                channel.close()
                continue
            answered = False
            try:
                answer = self._outcome(channel, on_progress)
                answered = True
                return answer
            finally:
                if answered:
                    self._free.put(channel)
                else:
                    # Mid-job: what the mover still says would answer the next one.
                    channel.close()

    @staticmethod
    def _outcome(channel: socket.socket, on_progress: Callable[[int], None]) -> dict:
        try:
            while True:
                message = channel.recv(MESSAGE_SIZE)
                if not message:
                    raise MoverBroken("the body mover stopped")
                answer = json.loads(message)
                if "progress" not in answer:
                    return answer
                on_progress(answer["progress"])
        except (OSError, ValueError) as exc:
            raise MoverBroken(f"the body mover could not be reached: {exc}") from None

    def _free_channel(self) -> socket.socket | None:
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        # None free: the movers may not have started yet, or one may have died.
        with self._lock:
            if not self._enabled:
                return None
            self._children = [child for child in self._children if child.poll() is None]
            self._all = [channel for channel in self._all if channel.fileno() != -1]
            now = time.monotonic()
            wanted = self._processes - len(self._children)
            if wanted and (self._started_at is None or now - self._started_at >= RESTART_SECONDS):
                self._started_at = now
                try:
                    for _ in range(wanted):
                        self._spawn()
                except OSError:
                    log.warning("could not start a body mover; bodies move in-process")
        try:
            return self._free.get_nowait()
        except queue.Empty:
            return None

    def _spawn(self) -> None:
        """Start one mover with its share of the channels. Call with the lock held."""
        per_process = -(-self._channel_count // self._processes)
        env = {**os.environ}
        env["PYTHONPATH"] = os.pathsep.join(
            path for path in (_IMPORT_ROOT, env.get("PYTHONPATH")) if path
        )
        pairs = [
            socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) for _ in range(per_process)
        ]
        theirs = [pair[1] for pair in pairs]
        try:
            child = subprocess.Popen(
                [sys.executable, "-m", mover_process.__name__]
                + [str(end.fileno()) for end in theirs],
                pass_fds=[end.fileno() for end in theirs],
                env=env,
                stdin=subprocess.DEVNULL,
            )
        except OSError:
            for ours, _ in pairs:
                ours.close()
            raise
        finally:
            for end in theirs:
                end.close()
        self._children.append(child)
        for ours, _ in pairs:
            self._all.append(ours)
            self._free.put(ours)

    def stop(self) -> None:
        """Close every channel and wait for the movers to end (killing any that do not
        within STOP_SECONDS)."""
        with self._lock:
            self._enabled = False
            channels, self._all = self._all, []
            children, self._children = self._children, []
        for channel in channels:
            with contextlib.suppress(OSError):
                channel.shutdown(socket.SHUT_RDWR)
            channel.close()
        for child in children:
            try:
                child.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def pids(self) -> list[int]:
        with self._lock:
            return [child.pid for child in self._children]
