"""A real `ferry serve` behind (or without) a proxy, and the password rule at the shell:
uvicorn's own X-Forwarded-For handling is off, --trusted-proxies turns Ferry's on, and
weak passwords are refused by FERRY_ADMIN_PASSWORD and `ferry users`."""

import contextlib
import signal
import subprocess
import sys

import pytest
import requests

from tests.live.test_serve import free_port, start, wait_until_up

pytestmark = pytest.mark.live

PASSWORD = "live-sessions-passphrase"


@contextlib.contextmanager
def serving(tmp_path, *flags: str):
    port = free_port()
    process = start(
        tmp_path / "data",
        port,
        *flags,
        env={"FERRY_ADMIN_USERNAME": "admin", "FERRY_ADMIN_PASSWORD": PASSWORD},
    )
    try:
        wait_until_up(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


def login(base: str, password: str, user: str = "admin", forwarded: str | None = None):
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return requests.post(
        f"{base}/api/v1/login",
        json={"user": user, "password": password},
        headers=headers,
        timeout=10,
    )


def test_forged_x_forwarded_for_does_not_dodge_the_address_limit(tmp_path):
    with serving(tmp_path) as base:
        for number in range(20):
            forged = f"198.51.100.{number}"
            assert login(base, "wrong", f"guess-{number}", forged).status_code == 401
        refused = login(base, PASSWORD, forwarded="198.51.100.200")
        assert refused.status_code == 429
        assert refused.json()["error"] == "error-login-blocked-for-ip"
        assert int(refused.headers["Retry-After"]) > 0


def test_a_trusted_proxy_names_the_client(tmp_path):
    with serving(tmp_path, "--trusted-proxies", "127.0.0.1") as base:
        for _ in range(5):
            assert login(base, "wrong", forwarded="203.0.113.66").status_code == 401
        blocked = login(base, PASSWORD, forwarded="203.0.113.66")
        assert blocked.status_code == 429
        assert blocked.json()["error"] == "error-login-blocked-for-user"
        assert login(base, PASSWORD, forwarded="198.51.100.7").status_code == 200


def test_a_weak_admin_password_from_the_environment_is_refused(tmp_path):
    process = start(
        tmp_path / "data",
        free_port(),
        env={"FERRY_ADMIN_USERNAME": "admin", "FERRY_ADMIN_PASSWORD": "12345678"},
    )
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "FERRY_ADMIN_PASSWORD" in output and "at least 12 characters" in output
    assert "12345678" not in output


def test_ferry_users_refuses_weak_passwords(tmp_path):
    users = [sys.executable, "-m", "ferry.cli", "users", "--data-dir", str(tmp_path / "d")]
    for weak in ("x", "12345678", "Password2024!"):
        created = subprocess.run(
            [*users, "create", "dave", "--password", weak], capture_output=True, text=True
        )
        assert created.returncode == 1
        assert "error-password-policy-not-met" in created.stderr
        assert weak not in created.stderr + created.stdout
    subprocess.run([*users, "create", "dave", "--password", PASSWORD], check=True)
    changed = subprocess.run(
        [*users, "set-password", "dave"], input="qwerty123456\n", capture_output=True, text=True
    )
    assert changed.returncode == 1 and "too easy to guess" in changed.stderr
