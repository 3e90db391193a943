"""URL validation, domain lists and the public-address rule (no network)."""

from __future__ import annotations

import pytest

from ferry.downloads.policy import (
    DOMAIN_BLOCKED,
    INVALID_URL,
    FetchError,
    FetchPolicy,
    check_url,
    is_public_address,
)
from tests.support.downloads import LOOPBACK_AND_PRIVATE_LITERALS

STRICT = FetchPolicy()
OPEN = FetchPolicy(allow_private_networks=True)


def refused(url: str, policy: FetchPolicy = STRICT) -> FetchError:
    with pytest.raises(FetchError) as caught:
        check_url(url, policy)
    return caught.value


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://example.com/file",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "example.com/file",
        "http:///no-host",
        "http://user:secret@example.com/",
        "http://allowed.example@evil.example/",
        "http://example.com:99999/",
        "http://example.com:0/",
        "http://example.com:port/",
        "http://[::1/",
        "http://exa mple.com/",
        "http://example.com\\@evil.example/",
        "http://example.com/\x00",
        "http://" + "a" * 2040 + ".com/",
        "http://256.1.1.1/",
        "http://1.2.3.4.5/",
        "http://0x1g.0.0.1/",
        "http://08.0.0.1/",
        "http://example.123/",
        "http://-bad-.example/",
    ],
)
def test_malformed_or_unsupported_urls_are_invalid(url):
    assert refused(url, OPEN).code == INVALID_URL


def test_a_usable_url_comes_back_rebuilt_from_the_checked_parts():
    checked = check_url("HTTPS://Files.Example.COM./data/report.csv?x=1#frag", STRICT)
    assert checked.url == "https://files.example.com/data/report.csv?x=1"
    assert (checked.host, checked.port, checked.ip) == ("files.example.com", 443, None)


def test_international_names_are_checked_in_their_ascii_form():
    checked = check_url("http://bücher.example/a", STRICT)
    assert checked.host == "xn--bcher-kva.example"


# --- domain lists -------------------------------------------------------------------


def test_blocked_list_matches_the_domain_and_its_subdomains_only():
    policy = FetchPolicy(blocked_domains=("Evil.Example.",))
    for url in ("http://evil.example/", "http://a.b.EVIL.example./x"):
        error = refused(url, policy)
        assert error.code == DOMAIN_BLOCKED
        assert "evil.example" in error.message
    check_url("http://notevil.example/", policy)
    check_url("http://evil.example.org/", policy)


def test_allowed_list_admits_only_its_domains():
    policy = FetchPolicy(allowed_domains=("*.files.example", "cdn.example"))
    check_url("http://files.example/x", policy)
    check_url("http://eu.files.example/x", policy)
    check_url("https://cdn.example/x", policy)
    error = refused("http://otherfiles.example/x", policy)
    assert error.code == DOMAIN_BLOCKED
    assert "not in the list of allowed domains" in error.message


def test_blocked_wins_over_allowed():
    policy = FetchPolicy(allowed_domains=("example.com",), blocked_domains=("private.example.com",))
    check_url("http://www.example.com/", policy)
    error = refused("http://x.private.example.com/", policy)
    assert "blocked by the rule 'private.example.com'" in error.message


def test_domain_rules_written_in_unicode_match_punycode_urls():
    policy = FetchPolicy(blocked_domains=("bücher.example",))
    assert refused("http://xn--bcher-kva.example/", policy).code == DOMAIN_BLOCKED
    assert refused("http://BÜCHER.example/", policy).code == DOMAIN_BLOCKED


def test_literal_ip_rules_match_every_notation_of_that_address():
    policy = FetchPolicy(blocked_domains=("93.184.215.14",))
    assert refused("http://1572394766/", policy).code == DOMAIN_BLOCKED


def test_a_bad_rule_fails_when_the_policy_is_made():
    with pytest.raises(ValueError):
        FetchPolicy(blocked_domains=("not a domain",))


# --- literal addresses --------------------------------------------------------------


@pytest.mark.parametrize("host", LOOPBACK_AND_PRIVATE_LITERALS)
def test_non_public_literal_addresses_are_blocked_in_every_notation(host):
    error = refused(f"http://{host}:8080/x")
    assert error.code == DOMAIN_BLOCKED
    assert "not a public Internet address" in error.message


@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "[::1]", "10.0.0.1"])
def test_private_literals_pass_when_private_networks_are_allowed(host):
    check_url(f"http://{host}/", OPEN)


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST.", "api.localhost", "a.b.localhost"])
def test_localhost_names_are_loopback_without_a_lookup(host):
    assert refused(f"http://{host}:8080/x").code == DOMAIN_BLOCKED
    check_url(f"http://{host}:8080/x", OPEN)


def test_names_merely_containing_localhost_are_ordinary_names():
    check_url("http://localhost.example.com/x", STRICT)
    check_url("http://mylocalhost/x", STRICT)


def test_short_ipv4_forms_are_rebuilt_as_the_address_they_mean():
    checked = check_url("http://0x7f.1:81/x", OPEN)
    assert checked.url == "http://127.0.0.1:81/x"
    assert str(checked.ip) == "127.0.0.1"


def test_ipv6_zone_ids_are_refused():
    assert refused("http://[fe80::1%25eth0]/").code == DOMAIN_BLOCKED
    assert refused("http://[fe80::1%25eth0]/", OPEN).code == INVALID_URL


@pytest.mark.parametrize(
    "address",
    [
        "93.184.215.14",
        "1.1.1.1",
        "2606:4700:4700::1111",
        "::ffff:93.184.215.14",
        "64:ff9b::5db8:d70e",
    ],
)
def test_ordinary_internet_addresses_are_public(address):
    assert is_public_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "fd00:ec2::254",
        "100.100.100.200",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a00:1",
        "64:ff9b:1::1",
        "2002:a9fe:a9fe::1",
        "2001:db8::1",
        "192.0.2.1",
        "fe80::1%eth0",
    ],
)
def test_disguised_internal_addresses_are_not_public(address):
    assert not is_public_address(address)
