"""`ferry serve` settings: every flag documented, flags over variables over defaults."""

from pathlib import Path

import pytest

from ferry.cli.flags import SERVE_FLAGS, config_from
from ferry.cli.main import build_parser
from ferry.services import fetch_policy

README = (Path(__file__).parents[3] / "README.md").read_text()


@pytest.mark.parametrize("flag", SERVE_FLAGS, ids=lambda f: f.name)
def test_every_serve_flag_is_in_the_readme_and_help(flag, capsys):
    assert f"| `{flag.name}` | `{flag.env}` |" in README
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    assert flag.env in capsys.readouterr().out


def test_flags_win_over_environment_which_wins_over_defaults():
    args = build_parser().parse_args(["serve", "--port", "4000", "--allow-download"])
    environment = {
        "FERRY_PORT": "5000",
        "FERRY_HOST": "0.0.0.0",
        "FERRY_MAX_DOWNLOAD_SIZE": "2G",
        "FERRY_DOWNLOAD_BLOCKED_DOMAINS": "evil.test, bad.test",
        "FERRY_ALLOW_PRIVATE_NETWORKS": "yes",
    }
    config = config_from(args, environment)
    assert (config.port, config.host) == (4000, "0.0.0.0")
    assert config.allow_download is True and config.allow_private_networks is True
    assert config.max_download_size == 2 * 1024**3
    assert config.download_blocked_domains == ("evil.test", "bad.test")
    assert config_from(build_parser().parse_args(["serve"]), {}).port == 3000


def test_bad_environment_value_is_a_clear_exit():
    with pytest.raises(SystemExit, match="FERRY_PORT"):
        config_from(build_parser().parse_args(["serve"]), {"FERRY_PORT": "-1"})


@pytest.mark.parametrize("bad", ["0", "-5", "lots", "1Q"])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--max-upload-size", bad])


def test_downloads_are_capped_at_10_gib_and_queued_up_to_1000_unless_told_otherwise():
    defaults = config_from(build_parser().parse_args(["serve"]), {})
    assert defaults.max_download_size == 10 * 1024**3
    assert defaults.max_queued_downloads == 1000
    assert fetch_policy(defaults).max_size == 10 * 1024**3


@pytest.mark.parametrize("unlimited", ["0", "none", "unlimited"])
def test_a_download_cap_of_0_or_none_lifts_it(unlimited):
    config = config_from(
        build_parser().parse_args(["serve"]), {"FERRY_MAX_DOWNLOAD_SIZE": unlimited}
    )
    assert fetch_policy(config).max_size is None


def test_the_download_queue_may_be_0_but_not_negative():
    args = build_parser().parse_args(["serve", "--max-queued-downloads", "0"])
    assert config_from(args, {}).max_queued_downloads == 0
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--max-queued-downloads", "-1"])


def test_token_ttl_and_trusted_proxies():
    defaults = config_from(build_parser().parse_args(["serve"]), {})
    assert defaults.token_ttl == 90 * 86400 and defaults.trusted_proxies == ()
    args = build_parser().parse_args(["serve", "--token-ttl", "12h"])
    environment = {"FERRY_TOKEN_TTL": "7d", "FERRY_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8, ::1"}
    config = config_from(args, environment)
    assert config.token_ttl == 12 * 3600
    assert config.trusted_proxies == ("127.0.0.1/32", "10.0.0.0/8", "::1/128")
    in_seconds = config_from(build_parser().parse_args(["serve"]), {"FERRY_TOKEN_TTL": "90"})
    assert in_seconds.token_ttl == 90


@pytest.mark.parametrize(
    ("flag", "bad"),
    [
        ("--token-ttl", "0"),
        ("--token-ttl", "-1d"),
        ("--token-ttl", "soon"),
        ("--token-ttl", "inf"),
        ("--token-ttl", "3651d"),
        ("--trusted-proxies", "proxy.example.test"),
        ("--trusted-proxies", "10.0.0.0/33"),
    ],
)
def test_bad_session_settings_are_refused(flag, bad):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", flag, bad])


def test_rate_per_host_and_webhook_settings():
    defaults = config_from(build_parser().parse_args(["serve"]), {})
    assert (defaults.max_download_rate, defaults.max_connections_per_host) == (0, 4)
    assert defaults.webhook_urls == () and defaults.webhook_secret is None
    args = build_parser().parse_args(
        [
            "serve",
            "--max-download-rate",
            "20M",
            "--webhook-url",
            "https://hooks.example.test/a",
            "--webhook-url",
            "http://hooks.example.test/b",
        ]
    )
    config = config_from(args, {"FERRY_WEBHOOK_URL": "https://ignored.example.test/"})
    assert config.max_download_rate == 20 * 1024**2
    assert config.webhook_urls == ("https://hooks.example.test/a", "http://hooks.example.test/b")
    from_env = config_from(
        build_parser().parse_args(["serve"]),
        {"FERRY_WEBHOOK_URL": "https://a.test/x  https://b.test/y", "FERRY_WEBHOOK_SECRET": "k"},
    )
    assert from_env.webhook_urls == ("https://a.test/x", "https://b.test/y")
    assert from_env.webhook_secret == "k"


def test_a_webhook_url_that_is_not_http_is_refused():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--webhook-url", "ftp://hooks.example.test/"])
