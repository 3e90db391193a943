"""The client's pieces without a server: where the token comes from, the saved login,
the streamed multipart body, error texts and the numbered selection."""

from __future__ import annotations

import email.parser
import json
import stat

import pytest

from ferry.client import (
    UPLOAD_BLOCK,
    ApiError,
    ClientError,
    MultipartUpload,
    config_path,
    load_saved,
    resolve_target,
    save_login,
)
from ferry.client_cli import parse_choice

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


@pytest.mark.parametrize(
    ("text", "chosen"),
    [
        ("", [0, 1, 2, 3, 4]),
        ("all", [0, 1, 2, 3, 4]),
        ("none", []),
        ("1,3-4", [0, 2, 3]),
        ("5 2", [1, 4]),
    ],
)
def test_parse_choice(text, chosen):
    assert parse_choice(text, 5) == chosen


@pytest.mark.parametrize("text", ["6", "0-2", "x", "3-1"])
def test_parse_choice_refuses_what_is_out_of_range(text):
    with pytest.raises(ValueError):
        parse_choice(text, 5)
