"""The client's address for login throttling: X-Forwarded-For only from trusted proxies."""

import pytest

from handlers.client_address import client_address

LOOPBACK = ("127.0.0.0/8", "::1/128")


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "client"),
    [
        # No trusted proxies: the header is someone's claim and changes nothing.
        ("127.0.0.1", ["203.0.113.9"], (), "127.0.0.1"),
        ("198.51.100.7", ["203.0.113.9"], LOOPBACK, "198.51.100.7"),
        # From a trusted proxy: the rightmost address that is not a trusted proxy.
        ("127.0.0.1", ["203.0.113.9"], LOOPBACK, "203.0.113.9"),
        ("127.0.0.1", ["198.51.100.1, 203.0.113.9"], LOOPBACK, "203.0.113.9"),
        ("127.0.0.1", ["198.51.100.1", "203.0.113.9, 127.0.0.2"], LOOPBACK, "203.0.113.9"),
        ("10.0.0.2", ["203.0.113.9, 10.0.0.1"], ("10.0.0.0/8",), "203.0.113.9"),
        # A proxy without the header, or one listing only proxies.
        ("127.0.0.1", [], LOOPBACK, "127.0.0.1"),
        ("127.0.0.1", ["127.0.0.5"], LOOPBACK, "127.0.0.5"),
        # Garbage where an address belongs: the nearest trusted proxy stands in.
        ("127.0.0.1", ["203.0.113.9, unknown"], LOOPBACK, "127.0.0.1"),
        ("127.0.0.1", ["203.0.113.9, not-an-ip, 127.0.0.3"], LOOPBACK, "127.0.0.3"),
        # Canonical forms, so spelling an address differently is not a new client.
        ("::ffff:127.0.0.1", ["2001:DB8::0001"], LOOPBACK, "2001:db8::1"),
        ("::ffff:198.51.100.7", [], (), "198.51.100.7"),
        # A peer that is no address (an in-process test client) is kept as it is.
        ("testclient", ["203.0.113.9"], LOOPBACK, "testclient"),
        (None, ["203.0.113.9"], LOOPBACK, None),
    ],
)
def test_client_address(peer, forwarded, trusted, client):
    assert client_address(peer, forwarded, trusted) == client
