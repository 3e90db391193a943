"""urllib3 connections that only ever reach an address the policy vetted.

urllib3 resolves a host and connects to whatever the answer is; a check made before
that, on a separate lookup, can be passed by a DNS answer that changes in between.
So this module overrides two of urllib3's private methods:

- `HTTPConnection._new_conn` (for HTTPS too, through `HTTPSConnection`): it resolves
  the host once, checks every answer against the policy, and connects to the checked
  address itself, so the check is made on the address actually connected to. It reads
  the private `_dns_host` for the host to resolve. Host header, SNI and certificate
  checks still use the host name.
- `PoolManager._new_pool`: it hands each new pool the fetch's `Transfer`, so every
  connection of a fetch (the first, each redirect hop, each segment) is vetted, and
  ended by the fetch's deadline and cancel flag.

Written against urllib3 2.0 through 2.8 (pyproject pins `urllib3>=2,<3`);
`SUPPORTED_URLLIB3` says so in code, and the tests fail when the installed urllib3 is
outside that range or no longer has the methods overridden here.
"""

from __future__ import annotations

import os
import socket

import certifi
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.connection import create_connection

from ferry.downloads.fetch_types import SEGMENTS
from ferry.downloads.policy import (
    NETWORK_ERROR,
    FetchError,
    FetchPolicy,
    check_address,
    literal_address,
)
from ferry.downloads.watchdog import Transfer

# The urllib3 versions this module was written for: from the first up to, not
# including, the second.
SUPPORTED_URLLIB3 = ((2, 0), (3, 0))
# The private urllib3 methods overridden here, by the class that defines them.
OVERRIDDEN = ((HTTPConnection, "_new_conn"), (urllib3.PoolManager, "_new_pool"))


def _vetted_addresses(host: str, port: int, policy: FetchPolicy) -> list[str]:
    literal = literal_address(host)
    if literal is not None:
        candidates = [str(literal)]
    else:
        try:
            candidates = list(policy.resolve(host, port))
        except (OSError, UnicodeError) as exc:
            raise FetchError(NETWORK_ERROR, f"could not resolve {host}: {exc}") from None
        if not candidates:
            raise FetchError(NETWORK_ERROR, f"could not resolve {host}: no addresses")
    for candidate in candidates:
        ip = literal_address(candidate)
        if ip is None:
            raise FetchError(NETWORK_ERROR, f"the resolver gave {candidate!r} for {host}")
        # One bad answer refuses the host: a name that points inside is not a download
        # source, whatever else it points to.
        check_address(host, ip, policy)
    return candidates


def _open_socket(
    address: tuple[str, int], timeout, source_address, socket_options
) -> socket.socket:
    # A seam for tests that must see where a connection would go without making it.
    return create_connection(
        address, timeout, source_address=source_address, socket_options=socket_options
    )


class _VettedConnectionMixin:
    """Replaces urllib3's resolve-and-connect with resolve, check, connect-to-that-IP."""

    def __init__(self, *args, ferry_transfer: Transfer, **kwargs):
        self._ferry_transfer = ferry_transfer
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        transfer = self._ferry_transfer
        transfer.check()
        host = self._dns_host.rstrip(".")
        addresses = _vetted_addresses(host, self.port, transfer.policy)
        last_error: OSError | None = None
        for address in addresses:
            try:
                sock = _open_socket(
                    (address, self.port), self.timeout, self.source_address, self.socket_options
                )
            except TimeoutError as exc:
                last_error = ConnectTimeoutError(self, f"connection to {host} timed out")
                last_error.__cause__ = exc
                continue
            except OSError as exc:
                last_error = NewConnectionError(self, f"failed to connect to {host}: {exc}")
                last_error.__cause__ = exc
                continue
            transfer.track(sock)
            return sock
        raise last_error


class _VettedHTTPConnection(_VettedConnectionMixin, HTTPConnection):
    pass


class _VettedHTTPSConnection(_VettedConnectionMixin, HTTPSConnection):
    pass


class _VettedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _VettedHTTPConnection


class _VettedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _VettedHTTPSConnection


class VettedPoolManager(urllib3.PoolManager):
    def __init__(self, transfer: Transfer, **kwargs):
        super().__init__(**kwargs)
        self._ferry_transfer = transfer
        self.pool_classes_by_scheme = {"http": _VettedHTTPPool, "https": _VettedHTTPSPool}

    def _new_pool(self, scheme, host, port, request_context=None):
        # Added after the pool key is computed: urllib3 keys pools by known fields only.
        context = dict(request_context if request_context is not None else self.connection_pool_kw)
        context["ferry_transfer"] = self._ferry_transfer
        return super()._new_pool(scheme, host, port, request_context=context)


def vetted_connections(transfer: Transfer) -> VettedPoolManager:
    """The connections of one fetch. urllib3 directly, not requests: a session, its
    adapter and request preparation cost more CPU than the rest of a small download.
    Never through a proxy (the address check would vet the proxy, not the target);
    certificates checked against `policy.ca_bundle`, else certifi's bundle.
    """
    bundle = transfer.policy.ca_bundle or certifi.where()
    trust = {"ca_cert_dir": bundle} if os.path.isdir(bundle) else {"ca_certs": bundle}
    return VettedPoolManager(
        transfer, num_pools=4, maxsize=SEGMENTS, cert_reqs="CERT_REQUIRED", **trust
    )
