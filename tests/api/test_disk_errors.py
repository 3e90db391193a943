"""A data directory that refuses writes (full, over quota, read-only): every write
answers the documented 507 envelope, changes nothing, and the server keeps serving.

The refusal is injected where the state files are written, so these run anywhere;
tests/live/test_faults.py fills a real tmpfs."""

from __future__ import annotations

import errno
import os

import pytest

from storage import store
from tests.conftest import ADMIN_PASSWORD
from tests.support.envelope import assert_error

REFUSALS = {
    errno.ENOSPC: "error-disk-full",
    errno.EDQUOT: "error-disk-full",
    errno.EROFS: "error-storage-read-only",
}

# A password any length or common-password rule accepts, so only the disk refuses.
NEW_USER = {
    "username": "bob",
    "email": "bob@example.test",
    "name": "Bob",
    "password": "quiet-harbor-lantern-42",
}


@pytest.fixture
def refuse_writes(monkeypatch):
    """refuse_writes(code): every state write fails with OSError(code) until undone."""
    real = store.write_atomically

    def refuse(code: int) -> None:
        def failing(path, data, **kwargs):
            raise OSError(code, os.strerror(code), str(path))

        monkeypatch.setattr(store, "write_atomically", failing)

    refuse.undo = lambda: monkeypatch.setattr(store, "write_atomically", real)
    return refuse


@pytest.mark.parametrize("code", REFUSALS, ids=errno.errorcode.get)
def test_login_on_a_refusing_disk_is_a_507_envelope(client, admin, refuse_writes, code):
    refuse_writes(code)
    response = client.post("/api/v1/login", json={"user": "admin", "password": ADMIN_PASSWORD})
    body = assert_error(response, 507, error_type=REFUSALS[code])
    assert body["error"].endswith(f"[{REFUSALS[code]}]")
    assert response.headers["cache-control"] == "no-store"
    # Reads go on.
    assert client.get("/api/v1/me", headers=admin.bearer).status_code == 200
    refuse_writes.undo()
    assert (
        client.post("/api/v1/login", json={"user": "admin", "password": ADMIN_PASSWORD}).status_code
        == 200
    )


def test_a_refused_write_leaves_nothing_behind_in_memory(client, admin, refuse_writes):
    refuse_writes(errno.ENOSPC)
    created = client.post("/api/v1/users.create", headers=admin.bearer, json=NEW_USER)
    assert_error(created, 507, error_type="error-disk-full")
    logged_out = client.post("/api/v1/logout", headers=admin.bearer)
    assert_error(logged_out, 507, error_type="error-disk-full")
    refuse_writes.undo()
    # Neither the user nor the revocation happened: the token still works, bob is unknown.
    info = client.get("/api/v1/users.info?username=bob", headers=admin.bearer)
    assert info.status_code in (400, 404), info.text
    assert client.get("/api/v1/me", headers=admin.bearer).status_code == 200


def test_other_os_errors_stay_internal_errors(client, admin, refuse_writes):
    refuse_writes(errno.EIO)
    response = client.post("/api/v1/login", json={"user": "admin", "password": ADMIN_PASSWORD})
    assert_error(response, 500)
