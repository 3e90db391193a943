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
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

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


# --- concurrent starts against a stand-in for the server's start endpoint -----------------


class StartServer:
    """Answers `GET /DIR?download=URL` like Ferry; `hold(url, seen)` decides, under
    `self.changed`, whether a request may be answered yet."""

    def __init__(self, hold: Callable[[str, StartServer], bool] = lambda url, seen: False):
        self.changed = threading.Condition()
        self.arrived: list[str] = []
        self.answered: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.connections: set[tuple[str, int]] = set()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                url = parse_qs(urlsplit(self.path).query)["download"][0]
                with owner.changed:
                    owner.arrived.append(url)
                    owner.connections.add(self.client_address)
                    owner.in_flight += 1
                    owner.most_in_flight = max(owner.most_in_flight, owner.in_flight)
                    owner.changed.notify_all()
                    # The timeout only keeps a broken client from hanging the test.
                    owner.changed.wait_for(lambda: not hold(url, owner), timeout=30)
                if "blocked" in url:
                    status, body = 403, {"success": False, "error": "DOMAIN_BLOCKED"}
                    body["message"] = "blocked.test is on the blocked list"
                else:
                    name = url.rsplit("/", 1)[-1]
                    status, body = 200, {"download_id": f"id-{name}", "path": f"in/{name}"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                # Counted out before the body: the client cannot send its next start on
                # this connection until the body is in.
                with owner.changed:
                    owner.in_flight -= 1
                    owner.answered.append(url)
                    owner.changed.notify_all()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.client = FerryClient(Target(f"http://127.0.0.1:{self.server.server_port}", "t"))

    def __enter__(self) -> StartServer:
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc_info) -> None:
        with self.changed:
            self.changed.notify_all()
        self.server.shutdown()
        self.server.server_close()


def test_starts_come_back_in_the_order_given_and_a_refusal_stops_nothing():
    urls = [
        "https://a.test/first",
        "https://blocked.test/x",
        "https://a.test/b",
        "https://a.test/c",
    ]

    def first_answers_last(url: str, seen: StartServer) -> bool:
        return url == urls[0] and len(seen.answered) < len(urls) - 1

    with StartServer(first_answers_last) as server:
        outcomes = list(server.client.start_downloads("in", urls, connections=4))
    assert server.answered[-1] == urls[0]
    assert [o.url for o in outcomes] == urls
    assert [o.started and o.started["download_id"] for o in outcomes] == [
        "id-first",
        None,
        "id-b",
        "id-c",
    ]
    refusal = outcomes[1].error
    assert isinstance(refusal, ApiError) and (refusal.status, refusal.code) == (
        403,
        "DOMAIN_BLOCKED",
    )


def test_at_most_the_given_number_of_starts_are_in_flight():
    urls = [f"https://a.test/{n}" for n in range(7)]

    def until_the_slots_are_full(url: str, seen: StartServer) -> bool:
        return seen.in_flight < 3 and len(seen.arrived) < len(urls)

    with StartServer(until_the_slots_are_full) as server:
        outcomes = list(server.client.start_downloads("in", urls, connections=3))
    assert all(o.started for o in outcomes)
    assert sorted(server.arrived) == sorted(urls)
    assert server.most_in_flight == 3
    assert len(server.connections) == 3


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
            client.start_downloads("in", [f"https://a.test/{n}" for n in range(5)], connections=1)
        )
    finally:
        listener.close()
    assert all(isinstance(o.error, ConnectionFailed) for o in outcomes)
    assert len(accepted) == 1
