"""`ferry worker` and `ferry serve --workers 0`: PostgreSQL only, and said so at once."""

from __future__ import annotations

import pytest

from ferry.cli.flags import WORKER_FLAGS, config_from
from ferry.cli.main import build_parser, main


def test_a_worker_without_a_database_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FERRY_DATABASE_URL", raising=False)
    assert main(["worker", "--data-dir", str(tmp_path)]) == 2
    assert "ferry worker needs --database-url" in capsys.readouterr().err
    assert not (tmp_path / "state").exists()


def test_serving_the_api_only_without_a_database_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FERRY_DATABASE_URL", raising=False)
    assert main(["serve", "--workers", "0", "--data-dir", str(tmp_path)]) == 2
    assert "--workers 0 needs --database-url" in capsys.readouterr().err
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("bad", ["2", "-1", "many"])
def test_workers_is_0_or_1(bad):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--workers", bad])


def test_a_worker_takes_the_download_settings_and_no_http_ones():
    names = {flag.name for flag in WORKER_FLAGS}
    assert {"--database-url", "--data-dir", "--allow-private-networks"} <= names
    assert not names & {"--port", "--host", "--workers", "--max-connections"}
    args = build_parser().parse_args(["worker", "--max-concurrent-downloads", "7"])
    config = config_from(args, {"FERRY_DATABASE_URL": "postgresql://ferry@127.0.0.1/ferry"})
    assert (config.max_concurrent_downloads, config.workers) == (7, 1)
    assert config.database_url == "postgresql://ferry@127.0.0.1/ferry"
