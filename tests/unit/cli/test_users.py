"""`ferry users` on a data directory: new tokens follow the server's FERRY_TOKEN_TTL."""

import time
from datetime import datetime

import orjson

from ferry.cli.main import build_parser


def run(*argv: str) -> None:
    args = build_parser().parse_args(["users", *argv])
    assert args.run(args) == 0


def test_the_token_command_honours_the_token_ttl(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FERRY_TOKEN_TTL", "1h")
    data = str(tmp_path / "data")
    run("--data-dir", data, "create", "eve", "--password", "eve-pass-word-1")
    run("--data-dir", data, "token", "eve")
    assert "X-Auth-Token: " in capsys.readouterr().out
    tokens = orjson.loads((tmp_path / "data" / "state" / "accounts.json").read_bytes())["tokens"]
    (stored,) = tokens.values()
    expires = datetime.fromisoformat(stored["expiresAt"]).timestamp()
    assert abs(expires - (time.time() + 3600)) < 60
