"""With private networks disallowed, nothing internal is ever contacted; and the urllib3
this module overrides is still the urllib3 it was written for.

Every refusal is proved on the wire: the local server (which is the "internal" host
here) accepted no connection at all. Where a test needs a reachable "public" server,
FakeInternet answers for PUBLIC_IP from the local server and refuses anything else,
so no test sends traffic anywhere but 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import urllib3
from urllib3.connection import HTTPConnection

from ferry.downloads import urllib3_vetted
from ferry.downloads.fetch_types import TransferTuning
from ferry.downloads.policy import DOMAIN_BLOCKED, NETWORK_ERROR, FetchError, FetchPolicy
from tests.support.downloads import (
    LOCAL,
    LOOPBACK_AND_PRIVATE_LITERALS,
    PUBLIC_IP,
    StubResolver,
    fetch,
    fetch_failure,
    listing,
)
from tests.support.remote import RemoteServer
from tests.support.tls import PrivateCA

pytest_plugins = ("tests.support.download_fixtures",)


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


def blocked(url: str, directory, policy: FetchPolicy) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(url, directory, policy=policy)
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
    result = fetch(
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
    fetch(f"http://rebind.test:{remote.port}/f", target_dir, policy=FetchPolicy(resolver=resolver))
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
    assert fetch(remote.url("/lan.txt"), target_dir, policy=policy).size == 3


def test_names_that_do_not_resolve(target_dir):
    policy = dataclasses.replace(LOCAL, resolver=StubResolver({}))
    error = fetch_failure("http://nowhere.test/x", target_dir, policy)
    assert error.code == NETWORK_ERROR
    assert "could not resolve nowhere.test" in error.message


def test_the_host_header_names_the_host_while_the_checked_address_is_dialled(remote, target_dir):
    policy = dataclasses.replace(LOCAL, resolver=StubResolver({"files.test": ["127.0.0.1"]}))
    url = remote.file("/a", b"ok").replace("127.0.0.1", "files.test")
    fetch(url, target_dir, policy)
    assert remote.requests[0].headers["Host"] == f"files.test:{remote.port}"


def test_tls_checks_the_host_name_while_the_checked_address_is_dialled(tmp_path, target_dir):
    authority = PrivateCA(tmp_path)
    sni: list[str] = []
    resolver = StubResolver({"files.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    trusting = dataclasses.replace(LOCAL, resolver=resolver, ca_bundle=str(authority.bundle))
    with RemoteServer(tls=authority.server_context("files.test", sni)) as server:
        server.file("/a.txt", b"secure")
        result = fetch(server.url("/a.txt", host="files.test"), target_dir, trusting)
        assert result.path.read_bytes() == b"secure"
        assert sni == ["files.test"]
        assert server.requests[0].headers["Host"] == f"files.test:{server.port}"

        wrong_name = fetch_failure(server.url("/a.txt", host="other.test"), target_dir, trusting)
        assert (wrong_name.code, "TLS" in wrong_name.message) == (NETWORK_ERROR, True)
        system_store = dataclasses.replace(LOCAL, resolver=resolver)
        untrusted = fetch_failure(server.url("/a.txt", host="files.test"), target_dir, system_store)
        assert "certificate verify failed" in untrusted.message


def test_every_segment_connection_is_resolved_and_checked(remote, target_dir, internet):
    # The name points outside first, then (rebinding) at loopback for later connections.
    resolver = StubResolver({"files.example": [[PUBLIC_IP], ["127.0.0.1"]]})
    remote.ranged("/big.bin", 2 * 1024 * 1024)
    url = f"http://files.example:{remote.port}/big.bin"
    policy = FetchPolicy(resolver=resolver)
    segmented = TransferTuning(segmented_min_size=1 << 20, segment_probe_seconds=0)
    error = fetch_failure(url, target_dir, policy, tuning=segmented)
    assert error.code == DOMAIN_BLOCKED
    assert internet.attempts == [PUBLIC_IP]
    assert resolver.calls == ["files.example", "files.example"]


# --- the urllib3 it was written for -------------------------------------------------


def test_the_installed_urllib3_is_one_the_overrides_were_written_for():
    installed = tuple(int(part) for part in urllib3.__version__.split(".")[:2])
    lowest, first_unsupported = urllib3_vetted.SUPPORTED_URLLIB3
    assert lowest <= installed < first_unsupported, (
        f"urllib3 {urllib3.__version__} is outside the range ferry.downloads.urllib3_vetted "
        "was written for: check its overrides against this version, then widen the range"
    )


# The parameters urllib3 passes to each method the module overrides.
CALLED_WITH = {
    "_new_conn": ["self"],
    "_new_pool": ["self", "scheme", "host", "port", "request_context"],
}


@pytest.mark.parametrize(
    ("cls", "name"),
    urllib3_vetted.OVERRIDDEN,
    ids=[f"{cls.__name__}.{name}" for cls, name in urllib3_vetted.OVERRIDDEN],
)
def test_the_private_methods_it_overrides_still_exist(cls, name):
    original = getattr(cls, name, None)
    assert callable(original), f"urllib3's {cls.__name__} no longer has {name}"
    assert list(inspect.signature(original).parameters) == CALLED_WITH[name]


def test_a_connection_still_knows_the_host_it_resolves():
    # The override resolves `_dns_host` itself; urllib3 keeps the name as given there.
    assert HTTPConnection("files.example.", 80)._dns_host == "files.example."
