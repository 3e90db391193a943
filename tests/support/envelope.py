"""The one assertion for Ferry's error envelope."""


def assert_error(
    response, status: int, *, error: str | None = None, error_type: str | None = None
) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False
    assert isinstance(body["error"], str) and body["error"]
    if error is not None:
        assert body["error"] == error
    if error_type is not None:
        assert body.get("errorType") == error_type
    return body
