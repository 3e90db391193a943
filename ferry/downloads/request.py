"""One GET of a fetch: the request, the redirects it follows by hand, the status it
accepts, and what a response says about its body (length, encoding, validator)."""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import http.client
from importlib import metadata
from urllib.parse import urljoin

import urllib3
from urllib3.response import BaseHTTPResponse

from ferry.downloads.fetch_types import MAX_VALIDATOR_LENGTH
from ferry.downloads.policy import (
    DOMAIN_BLOCKED,
    NETWORK_ERROR,
    REMOTE_FILE_NOT_FOUND,
    CheckedUrl,
    FetchError,
)
from ferry.downloads.urllib3_vetted import VettedPoolManager
from ferry.downloads.watchdog import Transfer

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
NOT_FOUND_STATUSES = frozenset({404, 410})


def _version() -> str:
    try:
        return metadata.version("ferry")
    except metadata.PackageNotFoundError:
        return "0.1.0"


USER_AGENT = f"Ferry/{_version()}"


def get(
    connections: VettedPoolManager,
    transfer: Transfer,
    target: CheckedUrl,
    headers: dict | None = None,
) -> BaseHTTPResponse:
    policy = transfer.policy
    try:
        return connections.urlopen(
            "GET",
            target.url,
            headers={
                "User-Agent": USER_AGENT,
                "Accept-Encoding": "identity",
                "Accept": "*/*",
                **(headers or {}),
            },
            redirect=False,
            retries=False,
            preload_content=False,
            decode_content=False,
            timeout=urllib3.Timeout(connect=policy.connect_timeout, read=policy.idle_timeout),
        )
    except FetchError:
        raise
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
        raise transfer.explain(exc, target.host) from None


def _location(response: BaseHTTPResponse) -> str | None:
    location = response.headers.get("Location")
    if location is None:
        return None
    # Header values arrive Latin-1 decoded; redirect targets are usually UTF-8.
    with contextlib.suppress(UnicodeError):
        location = location.encode("latin-1").decode("utf-8")
    return location


def _check_status(response: BaseHTTPResponse, target: CheckedUrl) -> None:
    status = response.status
    if 200 <= status < 300:
        return
    reason = f"HTTP {status} {response.reason or ''}".rstrip()
    if status in NOT_FOUND_STATUSES:
        raise FetchError(REMOTE_FILE_NOT_FOUND, f"{target.host} answered {reason} for {target.url}")
    transient = status in RETRIED_STATUSES or status >= 500
    raise FetchError(
        NETWORK_ERROR,
        f"{target.host} answered {reason}",
        transient=transient,
        retry_after=retry_after_seconds(response.headers.get("Retry-After")) if transient else None,
    )


# Client errors that say "not now" rather than "never": a timeout and a rate limit.
RETRIED_STATUSES = frozenset({408, 429})
# A Retry-After longer than this is not waited for; the next try comes after this long.
LONGEST_RETRY_AFTER = 300.0


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header's wait in seconds (delay-seconds or an HTTP date), at most
    LONGEST_RETRY_AFTER; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), LONGEST_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    wait = (when - datetime.datetime.now(datetime.UTC)).total_seconds()
    return min(max(wait, 0.0), LONGEST_RETRY_AFTER)


def open_following_redirects(
    connections: VettedPoolManager,
    transfer: Transfer,
    target: CheckedUrl,
    headers: dict | None = None,
    *,
    passing: frozenset[int] = frozenset(),
):
    """Follow redirects by hand, re-checking each target; return the final response,
    which is a success or has a status in `passing`."""
    policy = transfer.policy
    hops = 0
    while True:
        try:
            response = get(connections, transfer, target, headers)
        except FetchError as exc:
            if hops and exc.code == DOMAIN_BLOCKED:
                raise FetchError(
                    exc.code, f"redirect to {target.url} refused: {exc.message}"
                ) from None
            raise
        if response.status in passing:
            return response, target
        if response.status not in REDIRECT_STATUSES:
            try:
                _check_status(response, target)
            except FetchError:
                response.close()
                raise
            return response, target
        location = _location(response)
        response.close()
        if not location:
            raise FetchError(NETWORK_ERROR, f"{target.host} redirected without a Location header")
        if hops >= policy.max_redirects:
            raise FetchError(
                NETWORK_ERROR, f"too many redirects (more than {policy.max_redirects})"
            )
        hops += 1
        try:
            target = policy.check_url(urljoin(target.url, location))
        except FetchError as exc:
            raise FetchError(exc.code, f"redirect to {location} refused: {exc.message}") from None


def header_length(response: BaseHTTPResponse) -> int | None:
    if "chunked" in response.headers.get("Transfer-Encoding", "").lower():
        return None
    value = response.headers.get("Content-Length", "").strip()
    return int(value) if value.isdigit() else None


def identity_encoded(response: BaseHTTPResponse) -> bool:
    return response.headers.get("Content-Encoding", "identity").strip().lower() in ("", "identity")


def strong_validator(response: BaseHTTPResponse) -> str | None:
    """What If-Range may carry for this response (RFC 9110 13.1.5), if anything: a strong
    ETag, else a Last-Modified at least a second older than the response's Date."""
    etag = response.headers.get("ETag", "").strip()
    if etag:
        strong = not etag.startswith("W/") and etag.isprintable()
        return etag if strong and len(etag) <= MAX_VALIDATOR_LENGTH else None
    modified = response.headers.get("Last-Modified", "").strip()
    try:
        modified_at = email.utils.parsedate_to_datetime(modified)
        sent_at = email.utils.parsedate_to_datetime(response.headers.get("Date", ""))
    except (TypeError, ValueError, IndexError):
        return None
    if (sent_at - modified_at).total_seconds() < 1 or len(modified) > MAX_VALIDATOR_LENGTH:
        return None
    return modified
