"""Rocket.Chat's documented calls of the pending-download operations send no body at all
(`curl -X POST .../downloadPendingFiles` with only the auth headers); Ferry answers them."""

import pytest


@pytest.mark.parametrize("path", ["/api/v1/downloadPendingFiles", "/api/v1/downloadPendingAvatars"])
def test_a_post_without_a_body_is_answered(client, admin, path):
    response = client.post(path, headers=admin.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "count": 0}
