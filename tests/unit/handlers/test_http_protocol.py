"""The HTTP protocol's limits are pinned to the uvicorn they were written against; their
behaviour is tested against a real server in tests/live/test_hostile_http.py."""

from importlib.metadata import version

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from handlers.http_protocol import BoundedHttpProtocol, applies_to, bounded_protocol


def test_the_protocol_is_pinned_to_the_uvicorn_it_was_written_against():
    assert applies_to(version("uvicorn")), (
        "uvicorn changed minor version: re-read HttpToolsProtocol (the parser callbacks, "
        "cycle, pipeline, connections, flow, send_400_response) that "
        "handlers/http_protocol.py builds on, then add the version to WRITTEN_AGAINST"
    )
    for name in (
        "on_url",
        "on_header",
        "on_headers_complete",
        "on_response_complete",
        "send_400_response",
        "_unset_keepalive_if_required",
    ):
        assert callable(getattr(HttpToolsProtocol, name, None)), name


def test_each_server_gets_its_own_limits():
    protocol = bounded_protocol(
        max_head_size=1024, head_timeout=1.5, body_timeout=2.5, max_connections=7
    )
    assert issubclass(protocol, BoundedHttpProtocol)
    assert (protocol.max_head_size, protocol.head_timeout) == (1024, 1.5)
    assert (protocol.body_timeout, protocol.max_connections) == (2.5, 7)
