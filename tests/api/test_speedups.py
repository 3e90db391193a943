"""Connexion's per-request inspection of handler signatures is done once per handler."""

from __future__ import annotations

import inspect

from tests.conftest import ADMIN_PASSWORD, log_in


def test_repeated_requests_do_not_inspect_handlers_again(client, monkeypatch):
    admin = log_in(client, "admin", ADMIN_PASSWORD)
    assert client.get("/api/v1/me", headers=admin.headers).status_code == 200
    inspected = []
    real_signature = inspect.signature

    def counting(function, *args, **kwargs):
        inspected.append(getattr(function, "__qualname__", function))
        return real_signature(function, *args, **kwargs)

    monkeypatch.setattr(inspect, "signature", counting)
    for _ in range(3):
        response = client.get("/api/v1/me", headers=admin.headers)
        assert response.status_code == 200
        assert response.json()["username"] == "admin"
    assert inspected == []
