"""What Ferry may fetch: URL validation, domain lists and the public-address rule.

Two checks guard every fetch. `check_url` runs on the URL the user gave and on every
redirect target; it needs no DNS, so the HTTP layer can answer synchronously. The
address check runs again in the connection layer on whatever the name resolved to,
because the resolved address is the one that is actually connected to.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import SplitResult, urlsplit, urlunsplit

import idna

INVALID_URL = "INVALID_URL"
DOMAIN_BLOCKED = "DOMAIN_BLOCKED"
DOWNLOAD_TIMEOUT = "DOWNLOAD_TIMEOUT"
REMOTE_FILE_NOT_FOUND = "REMOTE_FILE_NOT_FOUND"
NETWORK_ERROR = "NETWORK_ERROR"
FILE_TOO_LARGE = "FILE_TOO_LARGE"
DISK_FULL = "DISK_FULL"
WRITE_ERROR = "WRITE_ERROR"
DOWNLOAD_CANCELLED = "DOWNLOAD_CANCELLED"
SERVER_STOPPED = "SERVER_STOPPED"
QUEUE_FULL = "DOWNLOAD_QUEUE_FULL"
CHECKSUM_MISMATCH = "CHECKSUM_MISMATCH"

MAX_URL_LENGTH = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


class FetchError(Exception):
    """A fetch that cannot go on; `code` is one of the module constants.

    A `transient` failure (the connection failed, broke or was cut short; the server
    answered 408, 429 or 5xx) may go better if tried again, after `retry_after` seconds
    when the server said so.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        transient: bool = False,
        retry_after: float | None = None,
    ):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.transient = transient
        self.retry_after = retry_after


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host`, in its order, without repeats."""
    answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in answers:
        if sockaddr[0] not in addresses:
            addresses.append(sockaddr[0])
    return addresses


def normalize_host(host: str) -> str:
    """Lower-case ASCII (IDNA) form of a host name, without a trailing dot.

    Raises ValueError for names that cannot be a DNS host.
    """
    host = host.rstrip(".").lower()
    if not host or len(host) > 253:
        raise ValueError("empty or overlong host name")
    if not host.isascii():
        host = idna.encode(host, uts46=True).decode("ascii")
    labels = host.split(".")
    if any(not _LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{host!r} is not a valid host name")
    return host


# Underscores are not valid in host names but appear in real DNS records; tolerate them.
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


def _normalize_rule(rule: str) -> str:
    rule = rule.strip()
    # "*.example.com" and ".example.com" mean what "example.com" means here: the
    # domain and everything under it.
    rule = rule.removeprefix("*.").lstrip(".")
    literal = _ip_literal_or_none(rule)
    return str(literal) if literal is not None else normalize_host(rule)


@dataclass(frozen=True)
class FetchPolicy:
    allowed_domains: tuple[str, ...] = ()
    blocked_domains: tuple[str, ...] = ()
    allow_private_networks: bool = False
    max_size: int | None = None
    # Seconds a fetch may go without receiving a byte (the seed's per-download timeout).
    timeout: float = 300
    # Seconds a fetch may take in all; None sets no bound.
    max_duration: float | None = None
    idle_timeout: float = 30
    connect_timeout: float = 10
    max_redirects: int = 5
    resolver: Resolver | None = None
    # PEM file of the CAs to trust instead of the system store (a private CA); None = system.
    ca_bundle: str | None = None

    def __post_init__(self) -> None:
        # Normalised once so that a bad rule fails at start-up, not on some download.
        object.__setattr__(
            self, "allowed_domains", tuple(_normalize_rule(r) for r in self.allowed_domains)
        )
        object.__setattr__(
            self, "blocked_domains", tuple(_normalize_rule(r) for r in self.blocked_domains)
        )
        if self.max_size is not None and self.max_size < 0:
            raise ValueError("max_size must be at least 0")
        for name in ("timeout", "idle_timeout", "connect_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.max_duration is not None and self.max_duration <= 0:
            raise ValueError("max_duration must be positive")
        if self.max_redirects < 0:
            raise ValueError("max_redirects must be at least 0")

    def resolve(self, host: str, port: int) -> list[str]:
        return (self.resolver or system_resolver)(host, port)

    def check_url(self, url: str) -> CheckedUrl:
        """`check_url(url, self)`. Downloads check every URL through their policy, so
        the policy is where the checks of a download can be seen and counted."""
        return check_url(url, self)


class CheckedUrl(NamedTuple):
    """A URL that passed `check_url`; `url` is rebuilt from the checked parts, `given` is
    the URL as the caller wrote it (what records and answers show)."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    query: str
    ip: IPAddress | None
    given: str = ""

    @property
    def parts(self) -> SplitResult:
        return urlsplit(self.url)


# --- addresses --------------------------------------------------------------------

_EXTRA_BLOCKED_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT; also holds Alibaba's metadata 100.100.100.200
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local; holds the cloud metadata 169.254.169.254
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)

_EXTRA_BLOCKED_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/96",  # unspecified, loopback and the deprecated IPv4-compatible form
        "::ffff:0:0:0/96",  # SIIT IPv4-translated
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",
        "2001:db8::/32",
        "2001:10::/28",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",  # unique-local; holds AWS's IPv6 metadata fd00:ec2::254
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
_TEREDO = ipaddress.IPv6Network("2001::/32")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address] | None:
    """IPv4 addresses an IPv6 address leads to, for the forms that tunnel or translate.

    Python's own properties for these differ between versions, so the bits are taken
    out here.
    """
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip in _NAT64:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip in _SIX_TO_FOUR:
        return [ipaddress.IPv4Address((int(ip) >> 80) & 0xFFFFFFFF)]
    if ip in _TEREDO:
        server = ipaddress.IPv4Address((int(ip) >> 64) & 0xFFFFFFFF)
        client = ipaddress.IPv4Address(~int(ip) & 0xFFFFFFFF)
        return [server, client]
    return None


def _public_v4(ip: ipaddress.IPv4Address) -> bool:
    return ip.is_global and not any(ip in net for net in _EXTRA_BLOCKED_V4)


def is_public_address(ip: str | IPAddress) -> bool:
    """True when `ip` is an ordinary Internet address that a download may connect to.

    Addresses that embed an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo) are judged
    by what they embed: NAT64 to a public address is how IPv6-only hosts reach IPv4
    servers, while `::ffff:127.0.0.1` is loopback in disguise.
    """
    if isinstance(ip, str):
        ip = ipaddress.ip_address(ip)
    if isinstance(ip, ipaddress.IPv4Address):
        return _public_v4(ip)
    if ip.scope_id:
        ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        return all(_public_v4(v4) for v4 in embedded)
    return ip.is_global and not any(ip in net for net in _EXTRA_BLOCKED_V6)


# --- literal hosts ------------------------------------------------------------------

_NUMERIC_PART = re.compile(r"0x[0-9a-f]*|[0-9]+")


def _ipv4_part(part: str) -> int:
    if part.startswith("0x"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part[1:], 8)  # raises ValueError for 8 and 9, as it should
    return int(part)


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """IPv4 in the notations inet_aton and browsers accept: `2130706433`, `0x7f.1`,
    `0177.0.0.1`. None when the host does not end in a number (so it is a name).

    Raises ValueError when it ends in a number but is no valid address: such a host
    would be read differently by different parsers, so it is refused outright.
    """
    parts = host.split(".")
    if not _NUMERIC_PART.fullmatch(parts[-1]):
        return None
    if len(parts) > 4 or not all(_NUMERIC_PART.fullmatch(p) for p in parts):
        raise ValueError(f"{host!r} is neither a host name nor an IPv4 address")
    numbers = [_ipv4_part(p) for p in parts]
    last_limit = 256 ** (5 - len(numbers))
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= last_limit:
        raise ValueError(f"{host!r} is out of range for an IPv4 address")
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ip_literal_or_none(host: str) -> IPAddress | None:
    host = host.strip("[]").lower().rstrip(".")
    if ":" in host:
        return ipaddress.IPv6Address(host)
    return _legacy_ipv4(host) if host else None


def literal_address(host: str) -> IPAddress | None:
    """The address a literal host stands for (any notation), or None for a name."""
    try:
        return _ip_literal_or_none(host)
    except ValueError:
        return None


# --- URLs ---------------------------------------------------------------------------

_LOOPBACK = ipaddress.IPv4Address("127.0.0.1")

_FORBIDDEN_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


def _invalid(reason: str) -> FetchError:
    return FetchError(INVALID_URL, reason)


def _match_rule(host: str, rules: tuple[str, ...]) -> str | None:
    for rule in rules:
        if host == rule or host.endswith("." + rule):
            return rule
    return None


def check_domain(host: str, policy: FetchPolicy) -> None:
    """Apply the blocked and allowed lists to a normalised host (name or canonical IP)."""
    blocked_by = _match_rule(host, policy.blocked_domains)
    if blocked_by is not None:
        raise FetchError(DOMAIN_BLOCKED, f"{host} is blocked by the rule {blocked_by!r}")
    if policy.allowed_domains and _match_rule(host, policy.allowed_domains) is None:
        raise FetchError(DOMAIN_BLOCKED, f"{host} is not in the list of allowed domains")


def check_address(host: str, ip: IPAddress, policy: FetchPolicy) -> None:
    if not policy.allow_private_networks and not is_public_address(ip):
        shown = "" if str(ip) == host else f" (resolves to {ip})"
        raise FetchError(
            DOMAIN_BLOCKED,
            f"{host}{shown} is not a public Internet address; "
            "downloads from private networks are disabled",
        )


def _split(url: str) -> SplitResult:
    if not isinstance(url, str) or not url:
        raise _invalid("the URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise _invalid(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if _FORBIDDEN_URL_CHARS.search(url):
        raise _invalid("the URL contains spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise _invalid(f"the URL cannot be parsed: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise _invalid("only http:// and https:// URLs can be downloaded")
    if "@" in parts.netloc:
        raise _invalid("URLs with a user name or password are not accepted")
    return parts


def _port(parts: SplitResult) -> int:
    try:
        port = parts.port
    except ValueError:
        raise _invalid("the URL has an invalid port") from None
    if port == 0:
        raise _invalid("the URL has an invalid port")
    return port if port is not None else (443 if parts.scheme.lower() == "https" else 80)


def check_url(url: str, policy: FetchPolicy) -> CheckedUrl:
    """Validate a URL against `policy` without any network access.

    Raises FetchError with INVALID_URL or DOMAIN_BLOCKED.
    """
    parts = _split(url)
    scheme = parts.scheme.lower()
    raw_host = parts.hostname or ""
    if not raw_host:
        raise _invalid("the URL has no host")
    if "%" in raw_host:
        # A zone id names a local interface: only link-local addresses have one.
        ip = literal_address(raw_host.split("%", 1)[0])
        if ip is not None and not policy.allow_private_networks:
            check_address(raw_host, ip, policy)
        raise _invalid("IPv6 zone ids are not supported")
    try:
        ip = _ip_literal_or_none(raw_host)
        host = str(ip) if ip is not None else normalize_host(raw_host)
    except (ValueError, idna.IDNAError) as exc:
        raise _invalid(f"the URL has an invalid host: {exc}") from None
    port = _port(parts)
    check_domain(host, policy)
    if ip is not None:
        check_address(raw_host, ip, policy)
    elif host == "localhost" or host.endswith(".localhost"):
        # RFC 6761: these names are loopback whatever DNS says, so no lookup is needed
        # to refuse them, and the refusal can be the start's answer.
        check_address(raw_host, _LOOPBACK, policy)
    netloc = f"[{host}]" if ":" in host else host
    default_port = 443 if scheme == "https" else 80
    if port != default_port:
        netloc += f":{port}"
    path = parts.path or "/"
    rebuilt = urlunsplit((scheme, netloc, path, parts.query, ""))
    return CheckedUrl(rebuilt, scheme, host, port, path, parts.query, ip, given=url)
