"""Schemathesis's CLI against a live `ferry serve`: every check, every phase (stateful
included), deterministic and time-boxed. Run it as `python -m tests.contract.live_schemathesis`
from the repository root; tests/contract/schemathesis-live.toml configures it.

The server downloads, but only from `localhost`, with private networks refused: the
domain lists are checked before any name is resolved, and `localhost` is refused as a
loopback name without a lookup, so the run makes no DNS query at all and nothing it
starts can reach another machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

from tests.live.test_serve import free_port, wait_until_up

ROOT = Path(__file__).resolve().parents[2]
# The login example in openapi.yaml, so the examples phase logs in for real.
ADMIN, PASSWORD = "admin", "correct-horse-battery-staple"
# Logout revokes the token it gets; the first this many logout cases get a live one.
LOGOUT_TOKENS = 10
SESSIONS_PASSWORD = "contract-sessions-password"


def _login(base: str, user: str = ADMIN, password: str = PASSWORD) -> dict[str, str]:
    answer = requests.post(
        f"{base}/api/v1/login", json={"user": user, "password": password}, timeout=10
    )
    answer.raise_for_status()
    data = answer.json()["data"]
    return {"X-User-Id": data["userId"], "X-Auth-Token": data["authToken"]}


def _spare_user(base: str, headers: dict[str, str]) -> str:
    """A second user for the cases that would change the run's admin."""
    body = {"username": "spare", "email": "spare@example.test", "name": "Spare"}
    created = requests.post(
        f"{base}/api/v1/users.create",
        json={**body, "password": "spare-password"},
        headers=headers,
        timeout=10,
    )
    created.raise_for_status()
    return created.json()["user"]["_id"]


def _sessions_user(base: str, headers: dict[str, str]) -> dict[str, str]:
    """A user of its own for users.logoutOtherClients, which revokes all its caller's tokens."""
    body = {"username": "sessions", "email": "sessions@example.test", "name": "Sessions"}
    requests.post(
        f"{base}/api/v1/users.create",
        json={**body, "password": SESSIONS_PASSWORD},
        headers=headers,
        timeout=10,
    ).raise_for_status()
    return _login(base, "sessions", SESSIONS_PASSWORD)


def _pair(headers: dict[str, str]) -> str:
    return f"{headers['X-User-Id']}:{headers['X-Auth-Token']}"


def _schemathesis() -> str:
    beside_python = Path(sys.executable).with_name("schemathesis")
    return str(beside_python) if beside_python.exists() else "schemathesis"


@contextlib.contextmanager
def serving(data: Path, port: int, env: dict[str, str], *flags: str):
    """`ferry serve` on 127.0.0.1:`port` over `data`, downloading only from localhost;
    stopped, and `data` removed, on leaving."""
    server = subprocess.Popen(
        [sys.executable, "-m", "ferry.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
        + ["--data-dir", str(data), "--allow-download"]
        + ["--download-allowed-domains", "localhost", *flags],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(port, server, timeout=30)
        yield
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(data, ignore_errors=True)


def run(max_time: int = 90, max_examples: int = 15, extra: tuple[str, ...] = ()) -> int:
    """Start a server, run `schemathesis run` against it, stop the server; the CLI's exit code."""
    data = Path(tempfile.mkdtemp(prefix="ferry-live-contract-"))
    (data / "music" / "2024").mkdir(parents=True)
    (data / "music" / "2024" / "song.txt").write_text("la la la\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "FERRY_ADMIN_USERNAME": ADMIN,
        "FERRY_ADMIN_PASSWORD": PASSWORD,
        "SCHEMATHESIS_HOOKS": "tests.contract.live_hooks",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    with serving(data, port, env, "--download-timeout", "5"):
        admin = _login(base)
        env["FERRY_CONTRACT_TOKEN"] = _pair(admin)
        env["FERRY_CONTRACT_LOGOUT_TOKENS"] = ",".join(
            _pair(_login(base)) for _ in range(LOGOUT_TOKENS)
        )
        env["FERRY_CONTRACT_SPARE_USER_ID"] = _spare_user(base, admin)
        env["FERRY_CONTRACT_SESSIONS_TOKEN"] = _pair(_sessions_user(base, admin))
        command = [
            _schemathesis(),
            f"--config-file={Path(__file__).with_name('schemathesis-live.toml')}",
            "run",
            f"{base}/api/v1/openapi.json",
            "--wait-for-schema=30",
            "--checks=all",
            "--phases=examples,coverage,fuzzing,stateful",
            "--generation-deterministic",
            f"--max-examples={max_examples}",
            f"--max-time={max_time}",
            "--request-timeout=10",
            "--workers=1",
            *extra,
        ]
        return subprocess.run(command, env=env, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(run(extra=tuple(sys.argv[1:])))
