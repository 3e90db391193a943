"""Server settings: one dataclass, filled from flags, `FERRY_*` variables and defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# A download cap that keeps one fetch from filling an ordinary disk.
DEFAULT_MAX_DOWNLOAD_SIZE = 10 * 1024**3


@dataclass(frozen=True)
class Config:
    data_dir: Path = Path("data")
    # postgresql://... keeps users, history, imports and the workspace in PostgreSQL
    # (the data directory then holds only files); None: TinyDB files under `state/`.
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 3000
    # Downloads (`GET /{directory}?download=URL`) are refused unless this is on.
    allow_download: bool = False
    download_allowed_domains: tuple[str, ...] = ()
    download_blocked_domains: tuple[str, ...] = ()
    allow_private_networks: bool = False
    # Largest file a fetch may write; 0 (or None) lifts the cap.
    max_download_size: int | None = DEFAULT_MAX_DOWNLOAD_SIZE
    max_concurrent_downloads: int = 3
    # 1: this server also works download jobs; 0: it serves the API only, and `ferry
    # worker` processes (PostgreSQL only) run the downloads.
    workers: int = 1
    # Downloads that may wait as `starting` beyond the running ones; more are refused.
    max_queued_downloads: int = 1000
    download_timeout: float = 300.0
    # Seconds a download may take in all; None sets no bound.
    download_max_duration: float | None = None
    # Tries after a transient failure (connection errors, 408, 429, 5xx); 0 tries once.
    download_retries: int = 3
    download_history_limit: int = 1000
    # Local paths `downloadPublicImportFile` may read; None refuses every local path.
    import_folder: Path | None = None
    max_upload_size: int = 1024**3
    # Seconds an upload's part file may go untouched before the server removes it.
    upload_part_ttl: int = 24 * 3600
    # Slack group DMs with at most this many members become DMs, larger ones private
    # groups (Rocket.Chat's DirectMesssage_maxUsers; 1 sends every group DM to a group).
    direct_message_max_users: int = 1
    # Scrypt cost; tests lower it so that creating users stays fast.
    password_cost: int = 2**14
    admin_username: str | None = None
    admin_password: str | None = None
    validate_responses: bool = False
    # A bearer token that may read /api/v1/metrics (for a Prometheus scraper); None: admins only.
    metrics_token: str | None = None
    # Sessions: a token stops working this many seconds after it was issued.
    token_ttl: int = 90 * 24 * 3600
    # Proxies (IPs or CIDR networks) whose X-Forwarded-For names the client that login
    # throttling counts; empty: the connected peer is the client.
    trusted_proxies: tuple[str, ...] = ()
    # "text" or "json": how `ferry serve` writes its logs to stderr.
    log_format: str = "text"
    # --- limits on what clients send (HTTP server and request bodies) ---
    # Largest body of any route but uploadImportFile (which takes `max_upload_size`).
    max_json_body: int = 1024**2
    # Largest request head (request line and headers); a larger one gets 431.
    max_header_size: int = 64 * 1024
    # Seconds a client has to send a whole request head, counted from when the connection
    # opens or the previous answer ends.
    header_timeout: float = 10.0
    # Seconds an idle keep-alive connection stays open.
    keep_alive_timeout: float = 5.0
    # Seconds a request body may go without a byte arriving.
    body_timeout: float = 30.0
    # Open connections at most; past it the longest-idle connection is closed, and a
    # request that finds every connection busy gets 503.
    max_connections: int = 1000
    # Bytes per second all downloads together may receive; 0 for no limit.
    max_download_rate: int = 0
    # Downloads from one host that transfer at once; more wait as `starting`.
    max_connections_per_host: int = 4
    # Where a signed POST goes for every finished download and import operation.
    webhook_urls: tuple[str, ...] = ()
    # The HMAC-SHA256 key of the webhooks' X-Ferry-Signature; None sends none.
    webhook_secret: str | None = None
    # Test hook: extra FetchPolicy fields, such as a stub DNS resolver.
    fetch_policy_overrides: dict = field(default_factory=dict)

    @property
    def files_dir(self) -> Path:
        """What `GET /{path}` serves and downloads land in."""
        return self.data_dir / "files"

    @property
    def state_dir(self) -> Path:
        """The databases and import staging, beside (never inside) the served files."""
        return self.data_dir / "state"
