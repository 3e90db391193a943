"""`ferry put/ls/mv/get/mkdir/rm` against a real server, the big file in resumable parts,
with transfer bars on a terminal and plain lines elsewhere."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import requests

from tests.live.test_client_cli import ferry, logged_in, run  # noqa: F401 - fixtures

pytestmark = pytest.mark.live


def test_the_file_commands_round_trip(ferry, logged_in, tmp_path):  # noqa: F811
    env, files = logged_in["env"], ferry["data"] / "files"
    local = tmp_path / "notes.txt"
    local.write_bytes(b"hello tree")
    put = run(env, "put", str(local), "docs/")
    assert put.returncode == 0, put.stderr
    assert (files / "docs" / "notes.txt").read_bytes() == b"hello tree"
    again = run(env, "put", str(local), "docs/notes.txt")
    assert again.returncode == 1 and "already exists" in again.stderr
    assert run(env, "mkdir", "archive").returncode == 0
    moved = run(env, "mv", "docs/notes.txt", "archive/notes.txt")
    assert moved.returncode == 0, moved.stderr
    listing = run(env, "ls", "archive")
    assert listing.stdout.split() == ["10", listing.stdout.split()[1], "notes.txt"]
    fetched = tmp_path / "back.txt"
    assert run(env, "get", "archive/notes.txt", str(fetched)).returncode == 0
    assert fetched.read_bytes() == b"hello tree"
    assert run(env, "rm", "archive").returncode == 1
    assert run(env, "rm", "-r", "archive").returncode == 0
    assert not (files / "archive").exists()


def test_a_put_cut_off_earlier_goes_on_from_where_it_stopped(ferry, logged_in, tmp_path):  # noqa: F811
    env, files = logged_in["env"], ferry["data"] / "files"
    local = tmp_path / "big.bin"
    local.write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    # An earlier attempt left its first part on the server.
    token = json.loads(logged_in["config"].read_text())["authToken"]
    first = requests.patch(
        f"{ferry['base']}/big/big.bin?size={local.stat().st_size}",
        data=local.read_bytes()[:300_000],
        headers={"Authorization": f"Bearer {token}", "X-Update-Range": "append"},
        timeout=30,
    )
    assert first.status_code == 202
    done = run(env, "put", str(local), "big/big.bin")
    assert done.returncode == 0, done.stderr
    assert "going on from byte 300000" in done.stdout
    assert (files / "big" / "big.bin").read_bytes() == local.read_bytes()


def run_on_terminal(env: dict, *args: str) -> tuple[int, str, str]:
    """`ferry ARGS` with its stderr on a pseudo-terminal: (status, stdout, what the
    terminal showed)."""
    controller, terminal = os.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "ferry.cli", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=terminal,
            env={**env, "TERM": "xterm-256color", "COLUMNS": "120"},
        )
        os.close(terminal)
        shown = bytearray()
        while True:
            try:
                data = os.read(controller, 65536)
            except OSError:  # the terminal's other end closed with the process
                break
            if not data:
                break
            shown += data
        stdout = process.stdout.read().decode()
        process.wait(timeout=60)
    finally:
        os.close(controller)
    return process.returncode, stdout, shown.decode(errors="replace")


def test_put_and_get_draw_a_bar_on_a_terminal_and_plain_lines_elsewhere(
    ferry,  # noqa: F811
    logged_in,  # noqa: F811
    tmp_path,
):
    env, files = logged_in["env"], ferry["data"] / "files"
    local = tmp_path / "bar.bin"
    local.write_bytes(b"b" * 3_000_000)
    status, stdout, shown = run_on_terminal(env, "put", str(local), "bars/")
    assert status == 0, shown
    assert "put bars/bar.bin" in shown and "100%" in shown and "3.0 MB" in shown
    assert stdout.strip() == "Uploaded bars/bar.bin (3000000 bytes)"
    assert (files / "bars" / "bar.bin").read_bytes() == local.read_bytes()
    fetched = tmp_path / "back.bin"
    status, stdout, shown = run_on_terminal(env, "get", "bars/bar.bin", str(fetched))
    assert status == 0, shown
    assert "get bars/bar.bin" in shown and "100%" in shown
    assert fetched.read_bytes() == local.read_bytes()
    piped = run(env, "get", "bars/bar.bin", str(tmp_path / "piped.bin"))
    assert piped.returncode == 0 and piped.stderr == ""
    assert piped.stdout.strip() == f"Saved {tmp_path / 'piped.bin'}"


def test_a_request_is_answered_while_an_upload_trickles_in(ferry, logged_in):  # noqa: F811
    token = json.loads(logged_in["config"].read_text())["authToken"]
    host, port = ferry["base"].removeprefix("http://").split(":")
    body = b"t" * 200_000
    with socket.create_connection((host, int(port)), timeout=30) as upload:
        upload.sendall(
            (
                "PUT /trickle/slow.bin HTTP/1.1\r\n"
                f"Host: {host}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body[:100_000]
        )
        # Half the body is in; another request is answered before the rest is sent.
        listing = requests.get(
            f"{ferry['base']}/", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert listing.status_code == 200
        upload.sendall(body[100_000:])
        answer = upload.makefile("rb").readline()
    assert answer.startswith(b"HTTP/1.1 201")
    assert (ferry["data"] / "files" / "trickle" / "slow.bin").read_bytes() == body
