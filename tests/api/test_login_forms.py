"""Login as Rocket.Chat clients send it: form-encoded, by digest, by resume token."""

from __future__ import annotations

import hashlib

from ferry.accounts import PasswordHasher
from tests.conftest import ADMIN_PASSWORD
from tests.support.envelope import assert_error

DIGEST = {"digest": hashlib.sha256(ADMIN_PASSWORD.encode()).hexdigest(), "algorithm": "sha-256"}


class _PlainPasswordHasher(PasswordHasher):
    """Hashes as Ferry did before digests: scrypt over the plain password."""

    SCHEME = PasswordHasher.PLAIN_SCHEME

    def hash(self, password: str) -> str:
        return self._encode(password)


def _token_works(client, data) -> bool:
    headers = {"X-User-Id": data["userId"], "X-Auth-Token": data["authToken"]}
    return client.get("/api/v1/me", headers=headers).status_code == 200


def test_a_form_encoded_login_logs_in(client):
    response = client.post("/api/v1/login", data={"user": "admin", "password": ADMIN_PASSWORD})
    assert response.status_code == 200, response.text
    assert _token_works(client, response.json()["data"])
    refused = client.post("/api/v1/login", data={"user": "admin", "password": "wrong-password!"})
    assert_error(refused, 401)


def test_a_sha256_digest_logs_in_and_a_wrong_one_does_not(client):
    response = client.post("/api/v1/login", json={"user": "admin", "password": DIGEST})
    assert response.status_code == 200, response.text
    assert _token_works(client, response.json()["data"])
    wrong = {"digest": "0" * 64, "algorithm": "sha-256"}
    assert_error(client.post("/api/v1/login", json={"user": "admin", "password": wrong}), 401)
    odd = {"digest": "not-hex", "algorithm": "sha-256"}
    assert_error(client.post("/api/v1/login", json={"user": "admin", "password": odd}), 400)


def test_an_old_plain_hash_takes_digests_after_the_next_plain_login(app, client):
    admin = app.services.accounts.users.by_username("admin")
    legacy = _PlainPasswordHasher().hash(ADMIN_PASSWORD)
    app.services.accounts.users.update(admin["_id"], {"password": legacy})
    assert_error(client.post("/api/v1/login", json={"user": "admin", "password": DIGEST}), 401)
    plain = client.post("/api/v1/login", json={"user": "admin", "password": ADMIN_PASSWORD})
    assert plain.status_code == 200
    assert (
        client.post("/api/v1/login", json={"user": "admin", "password": DIGEST}).status_code == 200
    )
    again = client.post("/api/v1/login", json={"user": "admin", "password": ADMIN_PASSWORD})
    assert again.status_code == 200


def test_resume_answers_the_same_valid_token_and_refuses_others(client):
    first = client.post("/api/v1/login", json={"user": "admin", "password": ADMIN_PASSWORD})
    token = first.json()["data"]["authToken"]
    resumed = client.post("/api/v1/login", json={"resume": token})
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["data"]["authToken"] == token
    assert resumed.json()["data"]["me"]["username"] == "admin"
    assert_error(client.post("/api/v1/login", json={"resume": "not-a-token"}), 401)
    form = client.post("/api/v1/login", data={"resume": token})
    assert form.status_code == 200


def test_wrong_resume_tokens_are_throttled_like_wrong_passwords(client):
    statuses = [
        client.post("/api/v1/login", json={"resume": f"guess-{i}"}).status_code for i in range(25)
    ]
    assert statuses[0] == 401
    assert statuses[-1] == 429
