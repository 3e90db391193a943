"""Helpers and test data shared by the downloader tests (fixtures: download_fixtures)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from urllib3.util.connection import create_connection

from ferry.downloads import direct_io
from ferry.downloads.fetch import fetch_to_directory
from ferry.downloads.fetch_types import FetchResult
from ferry.downloads.policy import FetchError, FetchPolicy
from tests.support.remote import RemoteServer

# A globally routable address standing for "some server on the Internet". Nothing is
# ever sent to it: FakeInternet answers for it from the local test server.
PUBLIC_IP = "93.184.215.14"

LOCAL = FetchPolicy(allow_private_networks=True)

# Hosts for 127.0.0.1 and other internal addresses, in every notation a URL can use.
LOOPBACK_AND_PRIVATE_LITERALS = [
    "127.0.0.1",
    "127.0.0.1.",
    "2130706433",
    "0x7f000001",
    "0X7F000001",
    "0177.0.0.1",
    "0177.0000.0000.0001",
    "127.1",
    "127.0.1",
    "0x7f.1",
    "0x7f.0.0.0x1",
    "017700000001",
    "[::1]",
    "[0:0:0:0:0:0:0:1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::127.0.0.1]",
    "[2002:7f00:1::]",  # 6to4 around 127.0.0.1
    "[2001:0:4136:e378:8000:63bf:80ff:fffe]",  # Teredo, client 127.0.0.1
    "[64:ff9b::7f00:1]",  # NAT64 to 127.0.0.1
    "[64:ff9b::169.254.169.254]",
    "169.254.169.254",
    "0xa9fea9fe",
    "[fd00:ec2::254]",
    "100.100.100.200",
    "100.64.0.1",
    "0.0.0.0",
    "0",
    "[::]",
    "10.0.0.1",
    "012.1",
    "172.16.0.1",
    "192.168.1.1",
    "[fc00::1]",
    "[fe80::1]",
    "224.0.0.1",
    "255.255.255.255",
    "240.0.0.1",
    "198.18.0.1",
    "[ff02::1]",
]
REPO_ROOT = Path(__file__).resolve().parents[2]


def listing(directory: Path) -> list[str]:
    """Every entry, hidden ones included: leftovers such as `.x.part` must show."""
    return sorted(os.listdir(directory))


def fetch(url, directory: Path, policy: FetchPolicy = LOCAL, **kwargs) -> FetchResult:
    return fetch_to_directory(url, directory, policy=policy, **kwargs)


def skip_without_o_direct(directory: Path) -> None:
    """Skip the test where files in `directory` cannot be written past the page cache."""
    probe = os.open(directory / "probe", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        supported = direct_io.open_direct(probe)
    finally:
        os.close(probe)
        os.unlink(directory / "probe")
    if supported is None:
        pytest.skip("this file system does not take O_DIRECT")
    os.close(supported)


def fetch_failure(url, directory: Path, policy: FetchPolicy = LOCAL, **kwargs) -> FetchError:
    """The error a fetch fails with; whatever it was, nothing half-written stays behind."""
    with pytest.raises(FetchError) as caught:
        fetch(url, directory, policy, **kwargs)
    assert not [n for n in listing(directory) if n.endswith(".part")]
    return caught.value


class StubResolver:
    """DNS answers from a table; a list of lists answers differently on each call."""

    def __init__(self, answers: dict[str, list[str] | list[list[str]]]):
        self.answers = answers
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        answer = self.answers.get(host)
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if answer and isinstance(answer[0], list):
            return answer[min(self.calls.count(host), len(answer)) - 1]
        return answer


class FakeInternet:
    """Stands in for the socket connect: public test addresses lead to the local server.

    Every attempt is recorded; an address it does not know is refused without any
    traffic, so a test can never reach a real host by mistake.
    """

    def __init__(self, remote: RemoteServer):
        self.remote = remote
        self.known = {PUBLIC_IP}
        self.attempts: list[str] = []

    def __call__(self, address, timeout, source_address=None, socket_options=None):
        self.attempts.append(address[0])
        if address[0] not in self.known:
            raise ConnectionRefusedError(f"fake internet does not know {address[0]}")
        return create_connection(
            ("127.0.0.1", self.remote.port), timeout, socket_options=socket_options
        )


def run_python(code: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter with this checkout importable."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def unanswered_port():
    """A loopback port whose accept queue is full, so new connects hang until they time out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
