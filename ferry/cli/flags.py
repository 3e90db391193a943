"""Every `ferry serve` setting: its flag, its FERRY_* variable, how its value is read."""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferry.kernel.config import Config
from ferry.kernel.logs import LOG_FORMATS


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _domains(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _size(value: str) -> int:
    """Bytes, with an optional K/M/G/T suffix (powers of 1024)."""
    text = value.strip().upper().removesuffix("B")
    factor = 1
    for suffix, power in (("K", 1), ("M", 2), ("G", 3), ("T", 4)):
        if text.endswith(suffix):
            text, factor = text[:-1], 1024**power
            break
    try:
        size = int(float(text) * factor)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {value!r}") from None
    if size <= 0:
        raise argparse.ArgumentTypeError("a size must be positive")
    return size


def _size_or_unlimited(value: str) -> int:
    """A size, or 0 / `none` / `unlimited` for no cap (stored as 0)."""
    if value.strip().lower() in ("0", "none", "unlimited"):
        return 0
    return _size(value)


def _count(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be a whole number, 0 or more")
    return number


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return number


def _workers(value: str) -> int:
    if value.strip() not in ("0", "1"):
        raise argparse.ArgumentTypeError(
            "expected 1 (work downloads here too) or 0 (serve the API only)"
        )
    return int(value)


def _log_format(value: str) -> str:
    lowered = value.strip().lower()
    if lowered not in LOG_FORMATS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(LOG_FORMATS)}")
    return lowered


# A metrics token shorter than this is too easy to guess.
MIN_METRICS_TOKEN = 16


def _metrics_token(value: str) -> str:
    token = value.strip()
    if len(token) < MIN_METRICS_TOKEN:
        raise argparse.ArgumentTypeError(
            f"a metrics token needs at least {MIN_METRICS_TOKEN} characters"
        )
    return token


_SECONDS_PER_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Ten years: longer is "forever" in effect, and far dates overflow the calendar.
LONGEST_DURATION = 3650 * 86400


def _duration(value: str) -> int:
    """Whole seconds, or a number with s/m/h/d (`90d`, `12h`)."""
    text = value.strip().lower()
    factor = _SECONDS_PER_UNIT.get(text[-1:])
    number = text[:-1] if factor else text
    try:
        seconds = int(float(number) * (factor or 1))
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"not a duration: {value!r}") from None
    if not 0 < seconds <= LONGEST_DURATION:
        raise argparse.ArgumentTypeError("a duration must be positive and at most 3650d")
    return seconds


def _networks(value: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or CIDR networks, each normalised (`10.0.0.0/8`)."""
    networks = []
    for part in _domains(value):
        try:
            networks.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an IP address or network: {part!r}") from None
    return tuple(networks)


def _webhook_url(value: str) -> str:
    url = value.strip()
    if not url.lower().startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"a webhook URL must be http or https: {value!r}")
    return url


@dataclass(frozen=True)
class Flag:
    name: str
    env: str
    field: str
    help: str
    parse: Callable[[str], Any] | None = None
    switch: bool = False
    # Given as often as needed (the variable holds the values separated by spaces).
    repeat: bool = False


# Every `ferry serve` setting: flag, environment variable, Config field. The README's
# table is checked against this list by a test.
SERVE_FLAGS = (
    Flag("--host", "FERRY_HOST", "host", "address to listen on"),
    Flag("--port", "FERRY_PORT", "port", "port to listen on", _positive_int),
    Flag("--data-dir", "FERRY_DATA_DIR", "data_dir", "served files and state live here", Path),
    Flag(
        "--database-url",
        "FERRY_DATABASE_URL",
        "database_url",
        "postgresql://... to keep records in PostgreSQL; unset: TinyDB under --data-dir",
    ),
    Flag(
        "--allow-download",
        "FERRY_ALLOW_DOWNLOAD",
        "allow_download",
        "let users with download-files start ?download= transfers",
        _bool,
        switch=True,
    ),
    Flag(
        "--download-allowed-domains",
        "FERRY_DOWNLOAD_ALLOWED_DOMAINS",
        "download_allowed_domains",
        "comma-separated domains downloads may use (suffix match); empty means any",
        _domains,
    ),
    Flag(
        "--download-blocked-domains",
        "FERRY_DOWNLOAD_BLOCKED_DOMAINS",
        "download_blocked_domains",
        "comma-separated domains downloads may never use; wins over allowed",
        _domains,
    ),
    Flag(
        "--allow-private-networks",
        "FERRY_ALLOW_PRIVATE_NETWORKS",
        "allow_private_networks",
        "let server-side fetches reach loopback, private and link-local addresses",
        _bool,
        switch=True,
    ),
    Flag(
        "--max-download-size",
        "FERRY_MAX_DOWNLOAD_SIZE",
        "max_download_size",
        "largest file a fetch may write (bytes, or with K/M/G/T; default 10G; 0 or "
        "'none' for no cap)",
        _size_or_unlimited,
    ),
    Flag(
        "--max-concurrent-downloads",
        "FERRY_MAX_CONCURRENT_DOWNLOADS",
        "max_concurrent_downloads",
        "transfers that run at once; more wait as 'starting'",
        _positive_int,
    ),
    Flag(
        "--workers",
        "FERRY_WORKERS",
        "workers",
        "1: this server also runs downloads and imports; 0: API only, `ferry worker` "
        "processes run them (PostgreSQL only)",
        _workers,
    ),
    Flag(
        "--max-queued-downloads",
        "FERRY_MAX_QUEUED_DOWNLOADS",
        "max_queued_downloads",
        "downloads that may wait as 'starting' beyond the running ones; more are refused "
        "with 503 DOWNLOAD_QUEUE_FULL",
        _count,
    ),
    Flag(
        "--download-timeout",
        "FERRY_DOWNLOAD_TIMEOUT",
        "download_timeout",
        "seconds a download may go without receiving a byte (?timeout= overrides it)",
        _positive_float,
    ),
    Flag(
        "--download-max-duration",
        "FERRY_DOWNLOAD_MAX_DURATION",
        "download_max_duration",
        "seconds a download may take in all (default: no bound)",
        _positive_float,
    ),
    Flag(
        "--download-retries",
        "FERRY_DOWNLOAD_RETRIES",
        "download_retries",
        "times a transient failure (connection, 408, 429, 5xx) is tried again, with backoff",
        _count,
    ),
    Flag(
        "--download-history-limit",
        "FERRY_DOWNLOAD_HISTORY_LIMIT",
        "download_history_limit",
        "finished downloads kept in the history",
        _positive_int,
    ),
    Flag(
        "--import-folder",
        "FERRY_IMPORT_FOLDER",
        "import_folder",
        "server folder downloadPublicImportFile may read local paths from",
        Path,
    ),
    Flag(
        "--max-upload-size",
        "FERRY_MAX_UPLOAD_SIZE",
        "max_upload_size",
        "largest import file uploadImportFile accepts (bytes, or with K/M/G/T)",
        _size,
    ),
    Flag(
        "--upload-part-ttl",
        "FERRY_UPLOAD_PART_TTL",
        "upload_part_ttl",
        "how long an unfinished upload's part file may go untouched before it is removed: "
        "seconds, or with s/m/h/d (24h)",
        _duration,
    ),
    Flag(
        "--direct-message-max-users",
        "FERRY_DIRECT_MESSAGE_MAX_USERS",
        "direct_message_max_users",
        "Slack group DMs with at most this many members import as DMs, larger as private groups",
        _positive_int,
    ),
    Flag(
        "--metrics-token",
        "FERRY_METRICS_TOKEN",
        "metrics_token",
        "bearer token that may read /api/v1/metrics besides admins (16+ characters; "
        "prefer the variable, a flag shows in the process list)",
        _metrics_token,
    ),
    Flag(
        "--token-ttl",
        "FERRY_TOKEN_TTL",
        "token_ttl",
        "how long a login token works: seconds, or with s/m/h/d (90d)",
        _duration,
    ),
    Flag(
        "--trusted-proxies",
        "FERRY_TRUSTED_PROXIES",
        "trusted_proxies",
        "comma-separated proxy IPs or CIDRs whose X-Forwarded-For names the client; "
        "empty trusts none",
        _networks,
    ),
    Flag(
        "--max-download-rate",
        "FERRY_MAX_DOWNLOAD_RATE",
        "max_download_rate",
        "bytes per second all downloads together may receive (20M, or with K/G); "
        "0 or none for no limit",
        _size_or_unlimited,
    ),
    Flag(
        "--max-connections-per-host",
        "FERRY_MAX_CONNECTIONS_PER_HOST",
        "max_connections_per_host",
        "downloads from one host that transfer at once; more wait as starting",
        _positive_int,
    ),
    Flag(
        "--webhook-url",
        "FERRY_WEBHOOK_URL",
        "webhook_urls",
        "URL that receives a signed POST for every finished download and import "
        "(repeatable; the variable takes several separated by spaces)",
        _webhook_url,
        repeat=True,
    ),
    Flag(
        "--webhook-secret",
        "FERRY_WEBHOOK_SECRET",
        "webhook_secret",
        "key of the HMAC-SHA256 in each webhook's X-Ferry-Signature (prefer the variable)",
    ),
    Flag(
        "--log-format",
        "FERRY_LOG_FORMAT",
        "log_format",
        "text (for people) or json (one object per line) on stderr",
        _log_format,
    ),
    # Limits on what clients send: request bodies, heads, slow and idle connections.
    Flag(
        "--max-json-body",
        "FERRY_MAX_JSON_BODY",
        "max_json_body",
        "largest request body of any route but uploadImportFile (bytes, or with K/M/G/T)",
        _size,
    ),
    Flag(
        "--max-header-size",
        "FERRY_MAX_HEADER_SIZE",
        "max_header_size",
        "largest request line plus headers; a larger head gets 431 (bytes, or with K/M/G/T)",
        _size,
    ),
    Flag(
        "--header-timeout",
        "FERRY_HEADER_TIMEOUT",
        "header_timeout",
        "seconds a client has to send a whole request head",
        _positive_float,
    ),
    Flag(
        "--keep-alive-timeout",
        "FERRY_KEEP_ALIVE_TIMEOUT",
        "keep_alive_timeout",
        "seconds an idle keep-alive connection stays open",
        _positive_float,
    ),
    Flag(
        "--body-timeout",
        "FERRY_BODY_TIMEOUT",
        "body_timeout",
        "seconds a request body may go without a byte arriving",
        _positive_float,
    ),
    Flag(
        "--max-connections",
        "FERRY_MAX_CONNECTIONS",
        "max_connections",
        "open connections at most; past it the longest-idle one is closed",
        _positive_int,
    ),
)


# The settings `ferry worker` takes: storage, and what shapes and limits a download.
WORKER_FIELDS = frozenset(
    {
        "data_dir",
        "database_url",
        "allow_download",
        "download_allowed_domains",
        "download_blocked_domains",
        "allow_private_networks",
        "max_download_size",
        "max_concurrent_downloads",
        "download_timeout",
        "download_max_duration",
        "download_retries",
        "download_history_limit",
        "max_download_rate",
        "max_connections_per_host",
        "webhook_urls",
        "webhook_secret",
        "log_format",
    }
)
WORKER_FLAGS = tuple(flag for flag in SERVE_FLAGS if flag.field in WORKER_FIELDS)


def add_flags(parser: argparse.ArgumentParser, flags: tuple[Flag, ...]) -> None:
    """Each flag, its help naming its variable and its default."""
    defaults = Config()
    for flag in flags:
        default = getattr(defaults, flag.field)
        shown = ",".join(default) if isinstance(default, tuple) else default
        text = (
            f"{flag.help} [env {flag.env}; default: {shown if shown not in (None, '') else 'none'}]"
        )
        if flag.switch:
            parser.add_argument(
                flag.name, dest=flag.field, action="store_const", const=True, help=text
            )
        elif flag.repeat:
            parser.add_argument(
                flag.name, dest=flag.field, type=flag.parse, action="append", help=text
            )
        else:
            parser.add_argument(flag.name, dest=flag.field, type=flag.parse, help=text)


def config_from(args: argparse.Namespace, environ: dict[str, str]) -> Config:
    """Flags win over FERRY_* variables, which win over Config's defaults."""
    values: dict[str, Any] = {}
    for flag in SERVE_FLAGS:
        given = getattr(args, flag.field, None)
        if given is not None:
            values[flag.field] = tuple(given) if flag.repeat else given
        elif environ.get(flag.env) not in (None, ""):
            parse = flag.parse or str
            try:
                raw = environ[flag.env]
                values[flag.field] = (
                    tuple(parse(part) for part in raw.split()) if flag.repeat else parse(raw)
                )
            except (argparse.ArgumentTypeError, ValueError) as exc:
                raise SystemExit(f"ferry: {flag.env}: {exc}") from None
    values["admin_username"] = environ.get("FERRY_ADMIN_USERNAME") or None
    values["admin_password"] = environ.get("FERRY_ADMIN_PASSWORD") or None
    return Config(**values)
