"""A real `ferry serve` process: first start, login with curl-like requests, a second
server refused, and a clean stop on SIGTERM."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.live


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(
    data_dir: Path, port: int, *extra: str, env: dict | None = None, output=subprocess.PIPE
) -> subprocess.Popen:
    """`ferry serve`; `output` takes its stdout and stderr (a file for chatty servers)."""
    environment = {**os.environ, **(env or {})}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ferry.cli",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            *extra,
        ],
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
    )


def wait_until_up(port: int, process: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            shown = process.stdout.read() if process.stdout else "(output in a file)"
            raise AssertionError(f"ferry exited early:\n{shown}")
        try:
            requests.get(f"http://127.0.0.1:{port}/api/info", timeout=5)
            return
        except (requests.ConnectionError, requests.Timeout):
            # Not listening yet, or (on a busy machine) its first answer, which builds
            # the middleware stack, is slow.
            time.sleep(0.1)
    # The caller's teardown never runs when its set-up fails here: a server left running
    # would outlive the test run.
    process.kill()
    process.wait(timeout=10)
    raise AssertionError("ferry did not come up")


def launch(data_dir: Path, *extra: str) -> tuple[str, str, subprocess.Popen]:
    """A started `ferry serve` on a free port: its URL, its banner (with the first
    admin's password) and its process."""
    port = free_port()
    process = start(data_dir, port, *extra)
    banner = []
    for line in process.stdout:
        banner.append(line)
        if line.startswith("Ferry "):
            break
    wait_until_up(port, process)
    return f"http://127.0.0.1:{port}", "".join(banner), process


@pytest.fixture
def server(tmp_path):
    base, banner, process = launch(tmp_path / "data")
    yield base, banner, tmp_path / "data", process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


def test_first_start_prints_a_login_that_works(server):
    base, banner, data_dir, _ = server
    password = re.search(r"password: (\S+)", banner).group(1)
    login = requests.post(
        f"{base}/api/v1/login", json={"user": "admin", "password": password}, timeout=5
    )
    assert login.status_code == 200
    token = login.json()["data"]["authToken"]
    assert (
        requests.get(
            f"{base}/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=5
        ).json()["username"]
        == "admin"
    )
    (data_dir / "files" / "hello.txt").write_text("hello, ferry")
    ranged = requests.get(
        f"{base}/hello.txt",
        headers={"Authorization": f"Bearer {token}", "Range": "bytes=7-11"},
        timeout=5,
    )
    assert ranged.status_code == 206 and ranged.text == "ferry"
    assert requests.get(f"{base}/api/v1/ui/", timeout=5).status_code == 200
    assert requests.get(f"{base}/api/v1/openapi.yaml", timeout=5).status_code == 200


def test_second_server_on_the_same_data_dir_fails_at_once(server):
    _, _, data_dir, _ = server
    second = start(data_dir, free_port())
    output, _ = second.communicate(timeout=20)
    assert second.returncode == 1
    assert "another ferry process" in output


def test_sigterm_stops_cleanly_and_data_survives(server):
    base, banner, data_dir, process = server
    password = re.search(r"password: (\S+)", banner).group(1)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    port = free_port()
    again = start(data_dir, port)
    try:
        wait_until_up(port, again)
        login = requests.post(
            f"http://127.0.0.1:{port}/api/v1/login",
            json={"user": "admin", "password": password},
            timeout=5,
        )
        assert login.status_code == 200
    finally:
        again.send_signal(signal.SIGTERM)
        again.wait(timeout=10)


def test_admin_from_environment(tmp_path):
    port = free_port()
    process = start(
        tmp_path / "d",
        port,
        env={"FERRY_ADMIN_USERNAME": "root", "FERRY_ADMIN_PASSWORD": "env-password-1"},
    )
    try:
        wait_until_up(port, process)
        login = requests.post(
            f"http://127.0.0.1:{port}/api/v1/login",
            json={"user": "root", "password": "env-password-1"},
            timeout=5,
        )
        assert login.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    assert "env-password-1" not in process.stdout.read()


def test_users_commands_manage_users_from_the_shell(tmp_path):
    data = tmp_path / "d"
    run = [sys.executable, "-m", "ferry.cli", "users", "--data-dir", str(data)]
    created = subprocess.run(
        [*run, "create", "carol", "--password", "carol-pass-word-1", "--role", "admin"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "created carol" in created.stdout
    token = subprocess.run([*run, "token", "carol"], capture_output=True, text=True, check=True)
    assert "X-Auth-Token:" in token.stdout
    unknown = subprocess.run([*run, "token", "nobody"], capture_output=True, text=True)
    assert unknown.returncode == 1 and "User not found" in unknown.stderr
