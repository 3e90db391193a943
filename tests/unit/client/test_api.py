"""The client's HTTP side without a Ferry server: where the token comes from, the saved
login, the streamed multipart body, error texts, and concurrent starts against a small
stand-in server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import email.parser
import json
import socket
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ferry.client.api import (
    UPLOAD_BLOCK,
    ApiError,
    ClientError,
    ConnectionFailed,
    FerryClient,
    MultipartUpload,
    Target,
    config_path,
    load_saved,
    resolve_target,
    save_login,
)

SAVED = {"server": "http://ferry.test:3000", "userId": "u1", "authToken": "saved-token"}


def test_config_path_honours_xdg_config_home(tmp_path):
    assert config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "ferry" / "client.json"


def test_flag_wins_over_environment_which_wins_over_the_saved_login():
    env = {"FERRY_URL": "http://ferry.test:3000/", "FERRY_TOKEN": "env-token"}
    assert resolve_target("ferry.test:3000", "flag-token", env, SAVED).token == "flag-token"
    assert resolve_target(None, None, env, SAVED).token == "env-token"
    saved = resolve_target(None, None, {}, SAVED)
    assert (saved.server, saved.token, saved.user_id) == (SAVED["server"], "saved-token", "u1")


def test_the_saved_token_never_goes_to_another_server():
    elsewhere = resolve_target("http://other.test", None, {}, SAVED)
    assert (elsewhere.server, elsewhere.token) == ("http://other.test", None)
    assert resolve_target(None, None, {"FERRY_URL": "http://other.test"}, SAVED).token is None


def test_save_login_writes_an_owner_only_file(tmp_path):
    path = tmp_path / "cfg" / "ferry" / "client.json"
    save_login(path, "http://ferry.test", "root", "u1", "t1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_saved(path) == {
        "server": "http://ferry.test",
        "username": "root",
        "userId": "u1",
        "authToken": "t1",
    }
    assert [p.name for p in path.parent.iterdir()] == ["client.json"]
    path.write_text("not json")
    assert load_saved(path) == {}


def test_multipart_body_streams_in_blocks_with_the_announced_length(tmp_path):
    export = tmp_path / 'odd"name.zip'
    payload = bytes(range(256)) * (3 * UPLOAD_BLOCK // 256 + 7)
    export.write_bytes(payload)
    seen: list[int] = []
    body = MultipartUpload({"importerKey": "csv"}, "file", export, seen.append)
    pieces = []
    while piece := body.read(64 * 1024):
        assert len(piece) <= 64 * 1024
        pieces.append(piece)
    raw = b"".join(pieces)
    assert len(raw) == len(body) and seen[-1] == len(payload) and len(seen) == 4

    message = email.parser.BytesParser().parsebytes(
        f"Content-Type: {body.content_type}\r\n\r\n".encode() + raw
    )
    fields = {part.get_param("name", header="content-disposition"): part for part in message.walk()}
    assert fields["importerKey"].get_payload(decode=True) == b"csv"
    assert fields["file"].get_filename() == "odd_name.zip"
    assert fields["file"].get_payload(decode=True) == payload


def test_a_file_that_shrinks_mid_upload_is_an_error(tmp_path):
    export = tmp_path / "export.zip"
    export.write_bytes(b"x" * 1000)
    body = MultipartUpload({}, "file", export)
    body.read(10)
    export.write_bytes(b"x" * 10)
    with pytest.raises(ClientError, match="shrank"):
        while body.read(4096):
            pass


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (
            {"success": False, "error": "INVALID_URL", "message": "only http"},
            "INVALID_URL",
            "only http",
        ),
        (
            {"success": False, "error": "No importer [error-x]", "errorType": "error-x"},
            "error-x",
            "No importer [error-x]",
        ),
        ("Bad Gateway", "HTTP 502", "Bad Gateway"),
    ],
)
def test_api_errors_carry_the_code_and_message(body, code, message):
    error = ApiError(502 if isinstance(body, str) else 400, body)
    assert (error.code, error.message) == (code, message)
    assert json.dumps(str(error))


# --- batch starts against a stand-in for the server's batch endpoint ---------------------


class BatchServer:
    """Answers `POST /api/v1/downloads` like Ferry (an item with `blocked` in its URL is
    refused), or with `refuse_all` as a whole-request refusal; keeps each request's items."""

    def __init__(self, refuse_all: dict | None = None):
        self.batches: list[list[dict]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers["Content-Length"])
                items = json.loads(self.rfile.read(length))["items"]
                owner.batches.append(items)
                if refuse_all is not None:
                    status, body = 403, refuse_all
                else:
                    status, body = 200, {"downloads": [answer(i) for i in items], "success": True}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        def answer(item: dict) -> dict:
            name = item["url"].rsplit("/", 1)[-1]
            path = f"{item['directory']}/{name}"
            if "blocked" in item["url"]:
                message = "blocked.test is on the blocked list"
                return {
                    "download_id": None,
                    "filename": name,
                    "path": path,
                    "success": False,
                    "message": message,
                    "error": "DOMAIN_BLOCKED",
                }
            return {
                "download_id": f"id-{name}",
                "filename": name,
                "path": path,
                "success": True,
                "message": "Download started",
                "error": None,
            }

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.client = FerryClient(Target(f"http://127.0.0.1:{self.server.server_port}", "t"))

    def __enter__(self) -> BatchServer:
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_urls_go_in_one_request_and_come_back_in_order_with_refusals_in_place():
    urls = ["https://a.test/first", "https://blocked.test/x", "https://a.test/b"]
    with BatchServer() as server:
        outcomes = list(server.client.start_downloads("in", urls, timeout=60))
    assert server.batches == [[{"url": url, "directory": "in", "timeout": 60} for url in urls]]
    assert [o.url for o in outcomes] == urls
    assert [o.started and o.started["download_id"] for o in outcomes] == ["id-first", None, "id-b"]
    refusal = outcomes[1].error
    assert isinstance(refusal, ApiError)
    assert (refusal.status, refusal.code) == (403, "DOMAIN_BLOCKED")
    assert "blocked list" in refusal.message


def test_many_urls_are_cut_into_batches_the_server_takes_and_stay_in_order():
    urls = [f"https://a.test/{n}" for n in range(2500)]
    with BatchServer() as server:
        outcomes = list(server.client.start_downloads("in", urls, connections=2))
    assert sorted(len(batch) for batch in server.batches) == [500, 1000, 1000]
    assert [o.started["download_id"] for o in outcomes] == [f"id-{n}" for n in range(2500)]


def test_long_urls_make_smaller_batches_than_the_body_limit():
    urls = [f"https://a.test/{'x' * 3000}/{n}" for n in range(400)]
    with BatchServer() as server:
        outcomes = list(server.client.start_downloads("in", urls))
    assert len(server.batches) > 1
    assert all(len(json.dumps({"items": b})) < 1024 * 1024 for b in server.batches)
    assert [o.url for o in outcomes] == urls


def test_a_whole_request_refusal_is_every_url_s_error():
    refusal = {"success": False, "error": "DOWNLOAD_FORBIDDEN", "message": "downloads are off"}
    with BatchServer(refuse_all=refusal) as server:
        outcomes = list(
            server.client.start_downloads("in", ["https://a.test/1", "https://a.test/2"])
        )
    assert [o.error.code for o in outcomes] == ["DOWNLOAD_FORBIDDEN"] * 2


def test_once_the_server_is_unreachable_the_rest_are_not_tried():
    accepted = []
    listener = socket.create_server(("127.0.0.1", 0))

    def hang_up() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = listener.accept()
                accepted.append(connection)
                connection.close()

    threading.Thread(target=hang_up, daemon=True).start()
    client = FerryClient(Target(f"http://127.0.0.1:{listener.getsockname()[1]}", "t"))
    try:
        outcomes = list(
            client.start_downloads(
                "in", [f"https://a.test/{n}" for n in range(5000)], connections=1
            )
        )
    finally:
        listener.close()
    assert all(isinstance(o.error, ConnectionFailed) for o in outcomes)
    assert len(accepted) == 1
