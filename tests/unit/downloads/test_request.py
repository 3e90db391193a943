"""One GET: what it asks for, the redirects it follows, the statuses it refuses."""

from __future__ import annotations

import dataclasses

import pytest

from ferry.downloads.policy import NETWORK_ERROR, REMOTE_FILE_NOT_FOUND
from ferry.downloads.request import USER_AGENT
from tests.support.downloads import LOCAL, fetch, fetch_failure, listing

pytest_plugins = ("tests.support.download_fixtures",)


def test_requests_ask_for_the_raw_bytes_and_say_who_is_asking(remote, target_dir):
    url = remote.file("/a.txt", b"hello")
    fetch(url, target_dir)
    headers = remote.requests[0].headers
    assert headers["Accept-Encoding"] == "identity"
    assert headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("Ferry/")


def test_gzip_bodies_are_saved_exactly_as_sent(remote, target_dir):
    payload = b"line of text\n" * 5000
    wire = remote.gzipped("/notes.txt", payload)
    seen = []
    result = fetch(remote.url("/notes.txt"), target_dir, on_headers=seen.append)
    assert result.path.read_bytes() == wire
    assert result.size == len(wire)
    # The announced length counts encoded bytes, so it is not offered as the file size.
    assert seen[0].content_length is None
    assert seen[0].content_type == "text/plain"


def test_redirects_are_followed_and_named_after_the_final_url(remote, target_dir):
    remote.file("/final/data.csv", b"a,b\n")
    remote.redirect("/go2", "/final/data.csv", status=307)
    url = remote.redirect("/go", remote.url("/go2"), status=301)
    result = fetch(url, target_dir)
    assert result.filename == "data.csv"
    assert [r.path for r in remote.requests] == ["/go", "/go2", "/final/data.csv"]


@pytest.mark.parametrize("status", [404, 410])
def test_missing_remote_files(remote, target_dir, status):
    error = fetch_failure(remote.status("/gone", status), target_dir)
    assert error.code == REMOTE_FILE_NOT_FOUND
    assert str(status) in error.message
    assert listing(target_dir) == []


@pytest.mark.parametrize("status", [500, 403, 304])
def test_other_error_statuses_name_the_status(remote, target_dir, status):
    error = fetch_failure(remote.status("/broken", status), target_dir)
    assert error.code == NETWORK_ERROR
    assert f"HTTP {status}" in error.message


def test_redirect_loops_and_long_chains_stop(remote, target_dir):
    remote.redirect("/loop-a", "/loop-b")
    remote.redirect("/loop-b", "/loop-a")
    error = fetch_failure(remote.url("/loop-a"), target_dir)
    assert (error.code, error.message) == (NETWORK_ERROR, "too many redirects (more than 5)")
    assert len(remote.requests) == 6

    for hop in range(3):
        remote.redirect(f"/chain{hop}", f"/chain{hop + 1}")
    remote.file("/chain3", b"end")
    strict = dataclasses.replace(LOCAL, max_redirects=2)
    assert fetch_failure(remote.url("/chain0"), target_dir, strict).code == NETWORK_ERROR
    assert fetch(remote.url("/chain0"), target_dir).filename == "chain3"


def test_redirects_to_other_schemes_are_refused(remote, target_dir):
    error = fetch_failure(remote.redirect("/r", "file:///etc/passwd"), target_dir)
    assert error.code == "INVALID_URL"
    assert "redirect to file:///etc/passwd refused" in error.message


def test_redirect_without_location(remote, target_dir):
    remote.route("/r", lambda h: h.send_plain(302, b""))
    assert fetch_failure(remote.url("/r"), target_dir).code == NETWORK_ERROR
