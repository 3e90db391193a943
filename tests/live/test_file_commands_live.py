"""`ferry put/ls/mv/get/mkdir/rm` against a real server, the big file in resumable parts."""

from __future__ import annotations

import json

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
    assert (files / "big" / "big.bin").read_bytes() == local.read_bytes()
