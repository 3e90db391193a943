"""Walks the spec: every protected operation answers 401 without credentials and 403 without
its permission, so a handler can never ship without its gate."""

from pathlib import Path

import pytest
import yaml

from ferry.accounts import ROLE_PERMISSIONS

SPEC = yaml.safe_load((Path(__file__).parents[2] / "openapi.yaml").read_text())
METHODS = ("get", "post", "put", "patch", "delete")


def operations():
    for path, item in SPEC["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def concrete(path: str) -> str:
    return (
        path.replace("{path}", "some/dir").replace("{directory}", "some/dir").replace("{id}", "x")
    )


PROTECTED = [
    pytest.param(path, method, op, id=f"{method.upper()} {path}")
    for path, method, op in operations()
    if op.get("security", SPEC["security"])
]


def test_every_operation_states_its_permission_or_is_public():
    for path, method, op in operations():
        public = op.get("security", SPEC["security"]) == []
        assert public or "x-ferry-permission" in op, f"{method} {path} names no permission"
        permission = op.get("x-ferry-permission")
        granted = set().union(*ROLE_PERMISSIONS.values())
        assert permission is None or permission in granted, f"{permission} is granted by no role"


@pytest.mark.parametrize(("path", "method", "op"), PROTECTED)
def test_protected_operation_needs_credentials(client, path, method, op):
    response = client.request(method.upper(), concrete(path), json={})
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


@pytest.mark.parametrize(("path", "method", "op"), PROTECTED)
def test_protected_operation_refuses_a_revoked_token(client, make_user, path, method, op):
    caller = make_user("revoked", ["admin"])
    client.post("/api/v1/logout", headers=caller.headers)
    assert (
        client.request(method.upper(), concrete(path), headers=caller.headers, json={}).status_code
        == 401
    )


@pytest.mark.parametrize(
    ("path", "method", "op"), [p for p in PROTECTED if p.values[2].get("x-ferry-permission")]
)
def test_protected_operation_needs_its_permission(client, make_user, path, method, op):
    nobody = make_user("nobody", [])
    response = client.request(method.upper(), concrete(path), headers=nobody.headers, json={})
    assert response.status_code == 403, response.text
    assert response.json()["error"] == (
        "User does not have the permissions required for this action [error-unauthorized]"
    )


def test_every_permission_a_role_grants_is_named_in_the_spec():
    # Permissions that widen what an operation shows (view-all-downloads, ...) gate no
    # operation, so the spec's info names them instead.
    gating = {op.get("x-ferry-permission") for _, _, op in operations()}
    described = SPEC["info"]["description"]
    for permission in set().union(*ROLE_PERMISSIONS.values()):
        assert permission in gating or f"`{permission}`" in described, permission
