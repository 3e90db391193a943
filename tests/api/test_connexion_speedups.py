"""Connexion's per-request inspection of handler signatures is done once per handler."""

from __future__ import annotations

import inspect
from importlib.metadata import version

from handlers.connexion_speedups import applies_to
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


def test_the_patch_is_pinned_to_the_connexion_it_was_written_against():
    assert applies_to(version("connexion")), (
        "connexion was upgraded: re-read the internals handlers/connexion_speedups.py "
        "patches, re-measure it, then add the version to WRITTEN_AGAINST (or delete it)"
    )
    assert applies_to("3.3.9") and not applies_to("3.4.0") and not applies_to("4.0.0")
