"""Every kind of error, from every layer, arrives in the one envelope."""

import pytest

from tests.support.envelope import assert_error

UNAUTHORIZED = {
    "success": False,
    "status": "error",
    "error": "unauthorized",
    "message": "You must be logged in to do this.",
}
FORBIDDEN = "User does not have the permissions required for this action [error-unauthorized]"


def test_missing_credentials_get_rocketchat_401_body(client):
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_wrong_token_gets_the_same_401_body(client, admin):
    response = client.get(
        "/api/v1/me", headers={"X-User-Id": admin.user_id, "X-Auth-Token": "wrong"}
    )
    assert response.json() == UNAUTHORIZED
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer wrong"})
    assert response.json() == UNAUTHORIZED


def test_token_of_another_user_id_is_refused(client, admin, make_user):
    other = make_user("other", ["user"])
    response = client.get(
        "/api/v1/me", headers={"X-User-Id": other.user_id, "X-Auth-Token": admin.token}
    )
    assert response.status_code == 401


def test_missing_permission_is_403_with_exact_text(client, make_user):
    plain = make_user("plain", ["user"])
    response = client.post(
        "/api/v1/users.create",
        headers=plain.headers,
        json={"username": "x", "email": "x@example.test", "name": "X", "password": "12345678"},
    )
    assert_error(response, 403, error=FORBIDDEN)
    assert "errorType" not in response.json()


def test_request_validation_is_400_invalid_params(client, admin):
    response = client.post("/api/v1/users.create", headers=admin.headers, json={"username": "x"})
    assert_error(response, 400, error_type="error-invalid-params")


def test_unknown_query_parameter_is_rejected(client, admin):
    response = client.get("/api/v1/users.list?bogus=1", headers=admin.headers)
    body = assert_error(response, 400, error_type="error-invalid-params")
    assert "bogus" in body["error"]


def test_malformed_json_body_is_400(client, admin):
    response = client.post(
        "/api/v1/users.create",
        headers={**admin.headers, "Content-Type": "application/json"},
        content=b"{not json",
    )
    assert_error(response, 400)


def test_unknown_api_route_is_404(client, admin):
    assert_error(client.get("/api/v1/no-such-thing", headers=admin.headers), 404)


def test_wrong_method_is_405_and_keeps_allow(client, admin):
    response = client.delete("/api/v1/me", headers=admin.headers)
    assert_error(response, 405)
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET"}


def test_domain_error_carries_rocketchat_error_type(client, admin):
    payload = {
        "username": "admin",
        "email": "new@example.test",
        "name": "A",
        "password": "a-long-passphrase",
    }
    response = client.post("/api/v1/users.create", headers=admin.headers, json=payload)
    body = assert_error(response, 400, error_type="error-field-unavailable")
    assert body["error"] == "admin is already in use :( [error-field-unavailable]"


def test_unexpected_exception_is_500_envelope_and_server_survives(app, admin, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(app.services.accounts, "list_users", explode)
    with app.test_client(raise_server_exceptions=False) as client:
        body = assert_error(client.get("/api/v1/users.list", headers=admin.headers), 500)
        assert "boom" not in body["error"]
        assert client.get("/api/info").status_code == 200


def test_body_that_is_not_utf8_is_400(client):
    response = client.post(
        "/api/v1/login", headers={"Content-Type": "application/json"}, content=b"\xd9\xff\xfe"
    )
    assert_error(response, 400, error_type="error-invalid-params")


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/v1/no-such-thing"),
        ("GET", "/api/v1/no-such-thing?bogus=1&count=x"),
        ("POST", "/api/v1/chat.postMessage"),
        ("DELETE", "/api/v1/channels.delete"),
        ("GET", "/api/v2/channels.list"),
        ("GET", "/api"),
    ],
)
def test_unknown_api_paths_answer_rocket_chats_not_found(client, admin, method, path):
    for headers in (admin.headers, {}):
        response = client.request(method, path, headers=headers)
        assert response.status_code == 404
        assert response.json() == {"success": False, "error": "Resource not found"}
        assert response.headers["x-content-type-options"] == "nosniff"


def test_file_routes_still_serve_paths_outside_the_api(client, admin):
    response = client.get("/no-such-file", headers=admin.headers)
    assert response.status_code == 404
    assert response.json()["error"] != "Resource not found"


def test_an_error_quoting_a_huge_input_is_cut_to_the_documented_length(client, admin):
    response = client.get("/api/v1/users.list?" + "b" * 6000 + "=1", headers=admin.headers)
    body = assert_error(response, 400, error_type="error-invalid-params")
    assert "bbbb" in body["error"]
    assert len(body["error"]) == 4096
