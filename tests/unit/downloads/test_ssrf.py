"""With private networks disallowed, nothing internal is ever contacted.

Every refusal is proved on the wire: the local server (which is the "internal" host
here) accepted no connection at all. Where a test needs a reachable "public" server,
FakeInternet answers for PUBLIC_IP from the local server and refuses anything else,
so no test sends traffic anywhere but 127.0.0.1.
"""

from __future__ import annotations

import dataclasses

import pytest

from ferry.downloads.fetch import fetch_to_directory
from ferry.downloads.policy import DOMAIN_BLOCKED, FetchError, FetchPolicy
from tests.support.downloads import LOOPBACK_AND_PRIVATE_LITERALS, PUBLIC_IP, StubResolver, listing

INTERNAL_ANSWERS = [
    "127.0.0.1",
    "127.0.0.2",
    "::1",
    "::ffff:127.0.0.1",
    "0.0.0.0",
    "10.1.2.3",
    "169.254.169.254",
    "fd00:ec2::254",
    "100.100.100.200",
    "64:ff9b::7f00:1",
    "2002:7f00:1::1",
]

pytest_plugins = ("tests.support.download_fixtures",)


def blocked(url: str, directory, policy: FetchPolicy) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch_to_directory(url, directory, policy=policy)
    assert caught.value.code == DOMAIN_BLOCKED
    assert listing(directory) == []
    return caught.value


@pytest.mark.parametrize("host", LOOPBACK_AND_PRIVATE_LITERALS)
def test_literal_internal_addresses_are_never_contacted(remote, target_dir, host):
    blocked(f"http://{host}:{remote.port}/secret", target_dir, FetchPolicy())
    assert remote.untouched


@pytest.mark.parametrize("answer", INTERNAL_ANSWERS)
def test_names_resolving_inside_are_never_contacted(remote, target_dir, answer):
    policy = FetchPolicy(resolver=StubResolver({"evil.test": [answer]}))
    error = blocked(f"http://evil.test:{remote.port}/secret", target_dir, policy)
    assert "evil.test (resolves to " in error.message
    assert remote.untouched


def test_localhost_by_name_is_refused_with_the_system_resolver(remote, target_dir):
    blocked(f"http://localhost:{remote.port}/secret", target_dir, FetchPolicy())
    assert remote.untouched


def test_one_internal_answer_among_public_ones_refuses_the_name(remote, target_dir, internet):
    policy = FetchPolicy(resolver=StubResolver({"mixed.test": [PUBLIC_IP, "127.0.0.1"]}))
    blocked(f"http://mixed.test:{remote.port}/x", target_dir, policy)
    assert internet.attempts == []
    assert remote.untouched


def test_a_public_name_is_fetched_through_its_checked_address(remote, target_dir, internet):
    resolver = StubResolver({"files.example": [PUBLIC_IP]})
    remote.file("/report.txt", b"public data")
    result = fetch_to_directory(
        f"http://files.example:{remote.port}/report.txt",
        target_dir,
        policy=FetchPolicy(resolver=resolver),
    )
    assert result.path.read_bytes() == b"public data"
    assert internet.attempts == [PUBLIC_IP]
    assert remote.requests[0].headers["Host"] == f"files.example:{remote.port}"


def test_rebinding_after_the_check_does_not_move_the_connection(remote, target_dir, internet):
    # A rebinding DNS server answers public first and internal afterwards; the one
    # answer that was checked is the one dialled, with no second lookup.
    resolver = StubResolver({"rebind.test": [[PUBLIC_IP], ["127.0.0.1"]]})
    remote.file("/f", b"ok")
    fetch_to_directory(
        f"http://rebind.test:{remote.port}/f", target_dir, policy=FetchPolicy(resolver=resolver)
    )
    assert resolver.calls == ["rebind.test"]
    assert internet.attempts == [PUBLIC_IP]


def test_rebinding_between_redirect_hops_is_caught(remote, target_dir, internet):
    resolver = StubResolver({"rebind.test": [[PUBLIC_IP], ["127.0.0.1"]]})
    remote.redirect("/hop", f"http://rebind.test:{remote.port}/secret")
    blocked(f"http://rebind.test:{remote.port}/hop", target_dir, FetchPolicy(resolver=resolver))
    assert [r.path for r in remote.requests] == ["/hop"]
    assert internet.attempts == [PUBLIC_IP]


REDIRECT_TARGETS = [
    "http://127.0.0.1:{port}/secret",
    "http://2130706433:{port}/secret",
    "http://0x7f.1:{port}/secret",
    "http://[::ffff:127.0.0.1]:{port}/secret",
    "http://[::1]:{port}/secret",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://100.100.100.200/latest/meta-data/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://evil.test:{port}/secret",
    "//evil.test:{port}/secret",
]


@pytest.mark.parametrize("location", REDIRECT_TARGETS)
def test_redirects_into_internal_hosts_are_refused(remote, target_dir, internet, location):
    resolver = StubResolver({"files.example": [PUBLIC_IP], "evil.test": ["127.0.0.1"]})
    remote.redirect("/hop", location.format(port=remote.port))
    error = blocked(
        f"http://files.example:{remote.port}/hop", target_dir, FetchPolicy(resolver=resolver)
    )
    assert error.message.startswith("redirect to ")
    assert [r.path for r in remote.requests] == ["/hop"]
    assert internet.attempts == [PUBLIC_IP]


def test_redirects_into_blocked_domains_are_refused(remote, target_dir, internet):
    resolver = StubResolver({"files.example": [PUBLIC_IP], "intranet.corp.example": [PUBLIC_IP]})
    policy = FetchPolicy(resolver=resolver, blocked_domains=("corp.example",))
    remote.redirect("/hop", f"http://intranet.corp.example:{remote.port}/x")
    error = blocked(f"http://files.example:{remote.port}/hop", target_dir, policy)
    assert "blocked by the rule 'corp.example'" in error.message
    assert [r.path for r in remote.requests] == ["/hop"]


def test_redirects_leaving_the_allowed_domains_are_refused(remote, target_dir, internet):
    resolver = StubResolver({"files.example": [PUBLIC_IP], "elsewhere.example": [PUBLIC_IP]})
    policy = FetchPolicy(resolver=resolver, allowed_domains=("files.example",))
    remote.redirect("/hop", f"http://elsewhere.example:{remote.port}/x")
    blocked(f"http://files.example:{remote.port}/hop", target_dir, policy)
    assert [r.path for r in remote.requests] == ["/hop"]


def test_allowing_private_networks_reaches_local_servers(remote, target_dir):
    remote.file("/lan.txt", b"lan")
    policy = dataclasses.replace(FetchPolicy(), allow_private_networks=True)
    assert fetch_to_directory(remote.url("/lan.txt"), target_dir, policy=policy).size == 3
