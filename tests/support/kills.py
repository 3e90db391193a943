"""Kill a writer process at a random moment and report what it had acknowledged."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path


def acknowledged_before_kill(
    script: str, state: Path, rng: random.Random, *, seconds: tuple[float, float] = (0.3, 0.9)
) -> list[list[str]]:
    """Run `script` on `state`, SIGKILL it after a random time; its `ack ...` lines, split."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    writer = subprocess.Popen(
        [sys.executable, "-c", script, str(state)], stdout=subprocess.PIPE, text=True, env=env
    )
    deadline = time.monotonic() + rng.uniform(*seconds)
    acknowledged = []
    while time.monotonic() < deadline:
        line = writer.stdout.readline()
        if line.startswith("ack"):
            acknowledged.append(line.split()[1:])
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    writer.stdout.close()
    return acknowledged
