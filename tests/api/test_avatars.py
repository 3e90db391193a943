"""Avatars at Rocket.Chat's paths: the imported picture, else an initials SVG."""

from __future__ import annotations

from ferry.services import AVATARS_FOLDER
from tests.support.envelope import assert_error

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def test_a_user_without_an_avatar_and_an_unknown_name_get_initials(client, admin, make_user):
    make_user("mary.jane", ["user"])
    for name, letters in (("mary.jane", b">MJ<"), ("nobody", b">N<")):
        response = client.get(f"/avatar/{name}", headers=admin.headers)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("image/svg+xml")
        assert letters in response.content
    hostile = client.get("/avatar/%3Cscript%3E", headers=admin.headers)
    assert b"<script>" not in hostile.content and b"&lt;" in hostile.content


def test_an_imported_avatar_is_served_with_its_type(app, client, admin, make_user):
    bob = make_user("bob", ["user"])
    avatars = app.services.config.files_dir / AVATARS_FOLDER
    avatars.mkdir(parents=True, exist_ok=True)
    (avatars / bob.user_id).write_bytes(PNG)
    app.services.accounts.users.update(bob.user_id, {"avatarETag": bob.user_id})
    response = client.get("/avatar/bob", headers=bob.headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content == PNG


def test_get_avatar_answers_what_the_avatar_path_serves(client, admin, make_user):
    ann = make_user("ann", ["user"])
    expected = client.get("/avatar/ann", headers=ann.headers)
    for query in (f"userId={ann.user_id}", "username=ann"):
        response = client.get(
            f"/api/v1/users.getAvatar?{query}", headers=ann.headers, follow_redirects=False
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == expected.headers["content-type"]
        assert response.content == expected.content
    refused = client.get("/api/v1/users.getAvatar?userId=nope", headers=ann.headers)
    assert assert_error(refused, 400)["errorType"] == "error-invalid-user"


def test_avatars_need_a_login(client):
    assert_error(client.get("/avatar/admin"), 401)
