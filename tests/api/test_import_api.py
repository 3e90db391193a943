"""Rocket.Chat's import API through the app, as an admin migrating a workspace uses it."""

import base64
import time
from pathlib import Path

from ferry.chat.operations.importers import importer_info
from handlers.app import create_app
from tests.conftest import ADMIN_PASSWORD, log_in, make_config
from tests.support.envelope import assert_error
from tests.support.importers import build_zip
from tests.support.postgres import stored_records
from tests.support.remote import RemoteServer

FIXTURES = Path(__file__).parents[3] / "shared" / "fixtures" / "rocketchat"
if not FIXTURES.is_dir():
    FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "rocketchat"


def csv_export(tmp_path: Path) -> Path:
    """Rocket.Chat's CSV zip built from the real e2e fixture parts."""
    rooms = (FIXTURES / "csv_import_rooms.csv").read_text()
    first_room = rooms.splitlines()[0].split(",")[0].strip().strip('"')
    return build_zip(
        tmp_path / "export.zip",
        {
            "users.csv": (FIXTURES / "csv_import_users.csv").read_text(),
            "channels.csv": rooms,
            f"{first_room}/messages.csv": 'billy.bob,1600000000000,"hello, room"\n',
            "directmessages/messages1.csv": (FIXTURES / "dm_messages.csv").read_text(),
        },
    )


def upload(client, admin, path: Path, importer_key: str = "csv"):
    return client.post(
        "/api/v1/uploadImportFile",
        headers=admin.headers,
        json={
            "binaryContent": base64.b64encode(path.read_bytes()).decode(),
            "contentType": "application/zip",
            "fileName": path.name,
            "importerKey": importer_key,
        },
    )


def wait_for(client, admin, predicate, path="/api/v1/import.status", timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(path, headers=admin.headers).json()
        if predicate(body):
            return body
        time.sleep(0.05)
    raise AssertionError(f"timed out; last answer {body}")


def prepared(client, admin):
    return wait_for(client, admin, lambda b: not b.get("waiting"), "/api/v1/getImportFileData")


def state_is(*states):
    return lambda body: body["state"] in states


def import_everything(client, admin) -> dict:
    """startImport with every user and channel; returns import.status once it is done."""
    started = client.post(
        "/api/v1/startImport",
        headers=admin.headers,
        json={"input": {"users": {"all": True}, "channels": {"all": True}}},
    )
    assert started.json() == {"success": True}
    done = wait_for(client, admin, state_is("done", "error"))
    assert done["state"] == "done", done
    return done


def test_nothing_yet(client, admin):
    assert client.get("/api/v1/import.status", headers=admin.headers).json() == {
        "state": "none",
        "success": True,
    }
    assert client.get("/api/v1/getCurrentImportOperation", headers=admin.headers).json() == {
        "success": True
    }
    assert client.get("/api/v1/getLatestImportOperations", headers=admin.headers).json() == []
    body = assert_error(client.get("/api/v1/getImportFileData", headers=admin.headers), 400)
    assert body == {
        "success": False,
        "error": "Import Operation Not Found [error-operation-not-found]",
        "errorType": "error-operation-not-found",
        "details": "getImportFileData",
    }


def test_importers_list_is_a_bare_array_of_visible_importers(client, admin):
    importers = client.get("/api/v1/importers.list", headers=admin.headers).json()
    assert {"key": "csv", "name": "CSV"} in importers
    assert {i["key"] for i in importers} >= {"csv", "slack", "slack-users", "hipchatenterprise"}
    assert not {"api", "pending-files", "pending-avatars"} & {i["key"] for i in importers}


def test_unknown_importer_has_rocketchats_exact_error(client, admin, tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"png")
    body = assert_error(upload(client, admin, path, importer_key="png"), 400)
    assert body == {
        "success": False,
        "error": "The importer (png) has no import class defined. [error-importer-not-defined]",
        "errorType": "error-importer-not-defined",
        "details": "uploadImportFile",
    }


def test_csv_round_trip_from_upload_to_workspace(importing, tmp_path):
    app, client, admin, _ = importing
    assert upload(client, admin, csv_export(tmp_path)).json() == {"success": True}
    data = prepared(client, admin)
    assert data["name"] == "CSV"
    usernames = {u["username"] for u in data["users"]}
    assert {"billy.bob", "billy.joe"} <= usernames
    assert any(
        c["channel_id"] == "__directMessages__" and c["name"] == "Direct_Messages"
        for c in data["channels"]
    )
    assert data["message_count"] == 3
    status = client.get("/api/v1/import.status", headers=admin.headers).json()
    assert status["state"] == "ready" and status["operation"]["status"] == "importer_user_selection"

    import_everything(client, admin)
    progress = client.get("/api/v1/getImportProgress", headers=admin.headers).json()
    assert progress["step"] == "importer_done" and progress["key"] == "csv"
    imported = client.get("/api/v1/users.info?username=billy.bob", headers=admin.headers).json()[
        "user"
    ]
    assert imported["canLogIn"] is False and "importIds" not in imported


def test_reimport_never_duplicates(importing, tmp_path):
    app, client, admin, _ = importing
    export = csv_export(tmp_path)
    for _ in range(2):
        upload(client, admin, export)
        prepared(client, admin)
        client.post(
            "/api/v1/startImport",
            headers=admin.headers,
            json={"input": {"users": {"all": True}, "channels": {"all": True}}},
        )
        assert wait_for(client, admin, state_is("done", "error"))["state"] == "done"
        total = client.get("/api/v1/users.list", headers=admin.headers).json()["total"]
        rooms = (
            app.services.workspace.channels_list()["total"]
            + app.services.workspace.groups_list_all()["total"]
        )
        counts = (total, rooms)
        if _ == 0:
            first = counts
    assert counts == first


def test_start_import_only_from_user_selection(importing, tmp_path):
    app, client, admin, _ = importing
    body = assert_error(
        client.post("/api/v1/startImport", headers=admin.headers, json={"input": {}}), 400
    )
    assert body["errorType"] == "error-operation-not-found"
    upload(client, admin, csv_export(tmp_path))
    prepared(client, admin)
    everything = {"input": {"users": {"all": True}, "channels": {"all": True}}}
    client.post("/api/v1/startImport", headers=admin.headers, json=everything)
    wait_for(client, admin, state_is("done"))
    again = assert_error(
        client.post("/api/v1/startImport", headers=admin.headers, json=everything), 400
    )
    assert again["errorType"] == "error-invalid-operation-status"


def test_selection_is_honoured(importing, tmp_path):
    app, client, admin, _ = importing
    upload(client, admin, csv_export(tmp_path))
    data = prepared(client, admin)
    one_user = data["users"][0]["user_id"]
    client.post(
        "/api/v1/startImport",
        headers=admin.headers,
        json={"input": {"users": {"list": [one_user]}, "channels": {"list": []}}},
    )
    wait_for(client, admin, state_is("done"))
    assert (
        client.get("/api/v1/users.list", headers=admin.headers).json()["total"] == 2
    )  # admin + one
    assert app.services.workspace.channels_list()["total"] == 0


def test_garbage_archive_fails_with_a_readable_reason_and_server_keeps_serving(importing, tmp_path):
    app, client, admin, _ = importing
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"this is not a zip at all")
    upload(client, admin, bad)
    status = wait_for(client, admin, state_is("error", "ready"))
    assert status["state"] == "error"
    assert status["operation"]["status"] == "importer_import_failed"
    assert status["operation"]["error"]
    assert client.get("/api/info").status_code == 200


def test_multipart_upload_streams_a_big_file(importing, tmp_path):
    app, client, admin, _ = importing
    export = csv_export(tmp_path)
    with export.open("rb") as handle:
        response = client.post(
            "/api/v1/uploadImportFile",
            headers=admin.headers,
            files={"file": ("../../evil/export.zip", handle, "application/zip")},
            data={"importerKey": "csv"},
        )
    assert response.json() == {"success": True}
    assert prepared(client, admin)["message_count"] == 3
    stored = app.services.imports.current_operation()["file"]
    assert "/" not in stored and ".." not in stored


def test_upload_over_the_cap_is_refused(tmp_path):
    app = create_app(make_config(tmp_path / "data", max_upload_size=10))
    app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
    with app.test_client() as client:
        admin = log_in(client, "admin", ADMIN_PASSWORD)
        body = assert_error(upload(client, admin, csv_export(tmp_path)), 400)
        assert body["errorType"] == "error-file-too-large"
    app.services.close()


def test_download_public_import_file_from_a_local_server(importing, tmp_path):
    app, client, admin, _ = importing
    with RemoteServer() as remote:
        url = remote.file("/export.zip", csv_export(tmp_path).read_bytes())
        response = client.post(
            "/api/v1/downloadPublicImportFile",
            headers=admin.headers,
            json={"fileUrl": url, "importerKey": "csv"},
        )
        assert response.json() == {"success": True}
        assert prepared(client, admin)["message_count"] == 3
    kinds = [d.get("kind") for d in app.services.downloads.history()]
    assert "import" in kinds


def test_download_public_import_file_refuses_private_addresses(client, admin):
    with RemoteServer() as remote:
        response = client.post(
            "/api/v1/downloadPublicImportFile",
            headers=admin.headers,
            json={"fileUrl": remote.url("/export.zip"), "importerKey": "csv"},
        )
        body = assert_error(response, 400)
        assert body == {"success": False, "error": "error-ssrf-validation-failed"}
        assert remote.untouched
    # Rocket.Chat's own test: the refused download leaves a failed operation behind.
    progress = client.get("/api/v1/getImportProgress", headers=admin.headers).json()
    assert progress["step"] == "importer_import_failed"
    assert progress["key"] == "csv"


def test_download_public_import_file_remote_404_fails_the_operation(importing):
    app, client, admin, _ = importing
    with RemoteServer() as remote:
        url = remote.status("/missing.zip", 404)
        body = assert_error(
            client.post(
                "/api/v1/downloadPublicImportFile",
                headers=admin.headers,
                json={"fileUrl": url, "importerKey": "csv"},
            ),
            400,
        )
        assert "404" in body["error"] or "not found" in body["error"].lower()
    assert app.services.imports.current_operation()["status"] == "importer_import_failed"


def test_local_paths_only_inside_the_import_folder(importing, tmp_path):
    app, client, admin, import_folder = importing
    outside = tmp_path / "outside.zip"
    csv_export(tmp_path).replace(outside)
    for path in (str(outside), "../outside.zip", "htt://www.freepik.com/photos/dog"):
        body = assert_error(
            client.post(
                "/api/v1/downloadPublicImportFile",
                headers=admin.headers,
                json={"fileUrl": path, "importerKey": "csv"},
            ),
            400,
        )
        assert body == {
            "success": False,
            "error": f"{path} [error-import-file-missing]",
            "errorType": "error-import-file-missing",
            "details": "downloadPublicImportFile",
        }
    outside.replace(import_folder / "inside.zip")
    response = client.post(
        "/api/v1/downloadPublicImportFile",
        headers=admin.headers,
        json={"fileUrl": "inside.zip", "importerKey": "csv"},
    )
    assert response.json() == {"success": True}
    assert prepared(client, admin)["message_count"] == 3


def test_api_importer_new_add_users_run(client, admin):
    operation = client.post("/api/v1/import.new", headers=admin.headers).json()["operation"]
    assert operation["type"] == "api" and operation["status"] == "importer_new"
    assert client.get("/api/v1/import.status", headers=admin.headers).json()["state"] == "new"
    missing = client.post(
        "/api/v1/import.addUsers",
        headers=admin.headers,
        json={"users": [{"emails": [], "importIds": ["x"]}]},
    )
    assert assert_error(missing, 400)["error"] == "Users are missing required data."
    users = [
        {
            "emails": ["dana@example.test"],
            "importIds": ["u-dana"],
            "username": "dana",
            "name": "Dana",
        }
    ]
    assert client.post(
        "/api/v1/import.addUsers", headers=admin.headers, json={"users": users}
    ).json() == {"success": True}
    assert client.get("/api/v1/import.status", headers=admin.headers).json()["state"] == "ready"
    assert client.post("/api/v1/import.run", headers=admin.headers).json() == {"success": True}
    wait_for(client, admin, state_is("done"))
    dana = client.get("/api/v1/users.info?username=dana", headers=admin.headers).json()["user"]
    assert dana["emails"][0]["address"] == "dana@example.test"
    again = assert_error(client.post("/api/v1/import.run", headers=admin.headers), 400)
    assert again == {"success": False, "error": "error-invalid-operation-status"}


def test_clear_invalidates_and_status_reports_error(importing, tmp_path):
    app, client, admin, _ = importing
    upload(client, admin, csv_export(tmp_path))
    prepared(client, admin)
    assert client.post("/api/v1/import.clear", headers=admin.headers).json() == {"success": True}
    status = client.get("/api/v1/import.status", headers=admin.headers).json()
    assert status["state"] == "error" and status["operation"]["valid"] is False
    blocked = client.post(
        "/api/v1/startImport", headers=admin.headers, json={"input": {"users": {"all": True}}}
    )
    assert assert_error(blocked, 400)["errorType"] == "error-invalid-operation-status"


def test_latest_operations_newest_first(importing, tmp_path):
    app, client, admin, _ = importing
    client.post("/api/v1/import.new", headers=admin.headers)
    upload(client, admin, csv_export(tmp_path))
    prepared(client, admin)
    operations = client.get("/api/v1/getLatestImportOperations", headers=admin.headers).json()
    assert [op["importerKey"] for op in operations] == ["csv", "api"]


def test_restart_mid_prepare_leaves_no_operation_stuck(tmp_path):
    config = make_config(tmp_path / "data")
    app = create_app(config)
    user, _ = app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
    operation = app.services.imports.operations.create(user["_id"], importer_info("csv", "test"))
    app.services.imports.operations.update(operation["_id"], status="importer_preparing_messages")
    writer = app.services.imports.staging.writer(operation["_id"])
    writer.add_user({"importIds": ["half"], "username": "half", "emails": []})
    app.services.store.close()  # the process dies here: no shutdown, no finish()

    again = create_app(config)
    again.services.start()  # what the server does as it starts the app
    recovered = again.services.imports.current_operation()
    assert recovered["status"] == "importer_import_failed"
    assert "start it again" in recovered["error"]
    assert again.services.imports.staging.operations() == []
    again.services.close()


def import_slack_with_files(client, admin, tmp_path, files: dict[str, str]) -> None:
    """A one-channel Slack export whose message carries `files` ({id: url}), imported."""
    users = [
        {"id": "U1", "name": "ann", "profile": {"email": "ann@example.test", "real_name": "Ann"}}
    ]
    channels = [
        {"id": "C1", "name": "general", "creator": "U1", "members": ["U1"], "created": 1500000000}
    ]
    message = {
        "type": "message",
        "user": "U1",
        "text": "see file",
        "ts": "1500000001.000100",
        "files": [
            {"id": file_id, "name": url.rsplit("/", 1)[-1], "size": 17, "url_private_download": url}
            for file_id, url in files.items()
        ],
    }
    export = build_zip(
        tmp_path / "slack.zip",
        {"users.json": users, "channels.json": channels, "general/2017-07-14.json": [message]},
    )
    upload(client, admin, export, importer_key="slack")
    prepared(client, admin)
    everything = {"input": {"users": {"all": True}, "channels": {"all": True}}}
    client.post("/api/v1/startImport", headers=admin.headers, json=everything)
    wait_for(client, admin, state_is("done"))


def test_pending_files_fetched_once_and_attached(importing, tmp_path):
    app, client, admin, _ = importing
    with RemoteServer() as remote:
        url = remote.file("/files/F1/report.txt", b"quarterly numbers")
        import_slack_with_files(client, admin, tmp_path, {"F1": url})
        count = client.post("/api/v1/downloadPendingFiles", headers=admin.headers, json={}).json()
        assert count == {"count": 1, "success": True}
        wait_for(client, admin, state_is("done"))
        assert len([r for r in remote.requests if r.path.startswith("/files/F1")]) == 1
    # Stored under the state directory (served by /file-upload/), not in the file tree.
    stored = list((app.services.config.state_dir / "uploads").glob("*/report.txt"))
    assert [p.read_bytes() for p in stored] == [b"quarterly numbers"]
    assert not (app.services.config.files_dir / "uploads").exists()
    assert (
        client.post("/api/v1/downloadPendingFiles", headers=admin.headers, json={}).json()["count"]
        == 0
    )


def test_pending_avatars_store_data_uris(importing):
    app, client, admin, _ = importing
    user = app.services.accounts.create_user("pic", email=None, name="Pic", password=None)
    pixel = base64.b64encode(b"\x89PNG fake").decode()
    app.services.accounts.users.update(
        user["_id"], {"_pendingAvatarUrl": f"data:image/png;base64,{pixel}"}
    )
    assert (
        client.post("/api/v1/downloadPendingAvatars", headers=admin.headers, json={}).json()[
            "count"
        ]
        == 1
    )
    wait_for(client, admin, state_is("done"))
    assert (
        client.post("/api/v1/downloadPendingAvatars", headers=admin.headers, json={}).json()[
            "count"
        ]
        == 0
    )


def test_encrypted_hipchat_export_with_its_password(importing, tmp_path):
    from tests.support.hipchat_export import full_export, make_tar, openssl_encrypt

    app, client, admin, _ = importing
    plain = make_tar(tmp_path / "export.tar.gz", full_export()).read_bytes()
    encrypted = tmp_path / "export.tar.gz.aes"
    encrypted.write_bytes(openssl_encrypt(plain, "s3cret-pass", "sha256"))

    def send(password):
        with encrypted.open("rb") as handle:
            return client.post(
                "/api/v1/uploadImportFile",
                headers=admin.headers,
                files={"file": (encrypted.name, handle, "application/octet-stream")},
                data={"importerKey": "hipchatenterprise", "password": password},
            )

    assert send("wrong").json() == {"success": True}
    failed = wait_for(client, admin, state_is("error", "ready"))
    assert failed["state"] == "error" and "password" in failed["operation"]["error"]
    send("s3cret-pass")
    assert prepared(client, admin)["message_count"] > 0
    assert "s3cret-pass" not in stored_records(app.services)


def test_restart_mid_import_fails_readably_and_a_new_import_works(tmp_path):
    config = make_config(tmp_path / "data")
    app = create_app(config)
    admin_user, _ = app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
    operation = app.services.imports.operations.create(
        admin_user["_id"], importer_info("csv", "test")
    )
    app.services.imports.operations.update(operation["_id"], status="importer_importing_messages")
    app.services.store.close()  # killed mid-import

    again = create_app(config)
    with again.test_client() as client:
        admin = log_in(client, "admin", ADMIN_PASSWORD)
        status = client.get("/api/v1/import.status", headers=admin.headers).json()
        assert status["state"] == "error"
        assert "start it again" in status["operation"]["error"]
        upload(client, admin, csv_export(tmp_path))
        assert prepared(client, admin)["message_count"] == 3
    again.services.close()


def test_pending_file_that_answers_404_is_an_error_and_never_saved(importing, tmp_path):
    app, client, admin, _ = importing
    with RemoteServer() as remote:
        good = remote.file("/files/F1/good.txt", b"the real bytes")
        gone = remote.status("/files/F2/gone.txt", 404)
        import_slack_with_files(client, admin, tmp_path, {"F1": good, "F2": gone})
        assert (
            client.post("/api/v1/downloadPendingFiles", headers=admin.headers, json={}).json()[
                "count"
            ]
            == 2
        )
        wait_for(client, admin, state_is("done"))
    progress = client.get("/api/v1/getImportProgress", headers=admin.headers).json()
    assert progress["key"] == "pending-files"
    assert progress["count"] == {"completed": 2, "total": 2, "error": 1}
    uploads = app.services.config.state_dir / "uploads"
    assert [p.name for p in uploads.glob("*/*")] == ["good.txt"]
    operation = client.get("/api/v1/getCurrentImportOperation", headers=admin.headers).json()[
        "operation"
    ]
    assert any(
        "404" in warning or "not found" in warning.lower()
        for warning in operation.get("warnings", [])
    )


def test_group_dm_member_limit_is_a_server_setting(tmp_path):
    mpim = [
        {"id": "G9", "name": "mpdm-a--b--c-1", "members": ["U1", "U2", "U3"], "created": 1500000000}
    ]
    users = [
        {"id": f"U{i}", "name": f"u{i}", "profile": {"email": f"u{i}@example.test"}}
        for i in (1, 2, 3)
    ]
    line = [{"type": "message", "user": "U1", "text": "hi all", "ts": "1500000001.000100"}]
    export = build_zip(
        tmp_path / "slack.zip",
        {
            "users.json": users,
            "channels.json": [],
            "mpims.json": mpim,
            "mpdm-a--b--c-1/2017-07-14.json": line,
        },
    )
    for limit, kind in ((1, "groups"), (3, "ims")):
        app = create_app(make_config(tmp_path / f"data{limit}", direct_message_max_users=limit))
        app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
        with app.test_client() as client:
            admin = log_in(client, "admin", ADMIN_PASSWORD)
            upload(client, admin, export, importer_key="slack")
            prepared(client, admin)
            everything = {"input": {"users": {"all": True}, "channels": {"all": True}}}
            client.post("/api/v1/startImport", headers=admin.headers, json=everything)
            wait_for(client, admin, state_is("done"))
            # The workspace-wide lists: the admin is a member of none of these rooms.
            listing = "groups.listAll" if kind == "groups" else "im.list.everyone"
            listed = client.get(f"/api/v1/{listing}", headers=admin.headers)
            assert listed.json()["total"] == 1, (limit, listed.json())
        app.services.close()


def test_restart_mid_upload_removes_the_half_written_file(tmp_path):
    config = make_config(tmp_path / "data")
    app = create_app(config)
    admin_user, _ = app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
    imports = app.services.imports
    operation = imports.operations.create(admin_user["_id"], importer_info("csv", "test"))
    imports.operations.update(operation["_id"], status="importer_uploading")
    partial = imports.store_dir / operation["_id"] / "export.zip"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"PK\x03\x04 only the start")
    app.services.store.close()  # killed mid-upload

    again = create_app(config)
    again.services.start()  # what the server does as it starts the app
    assert again.services.imports.current_operation()["status"] == "importer_import_failed"
    assert not partial.parent.exists()
    again.services.close()
