"""Fetching into a directory: bytes, names, limits and every way a fetch can fail."""

from __future__ import annotations

import dataclasses
import socket
import threading

import pytest

from ferry.downloads import fetch as fetch_module
from ferry.downloads.fetch import USER_AGENT, fetch_to_directory
from ferry.downloads.policy import (
    DISK_FULL,
    DOMAIN_BLOCKED,
    DOWNLOAD_CANCELLED,
    DOWNLOAD_TIMEOUT,
    FILE_TOO_LARGE,
    NETWORK_ERROR,
    REMOTE_FILE_NOT_FOUND,
    WRITE_ERROR,
    FetchError,
    FetchPolicy,
)
from tests.support.downloads import (
    LOCAL,
    PUBLIC_IP,
    StubResolver,
    listing,
    run_python,
    unanswered_port,
)
from tests.support.remote import RemoteServer, pattern_bytes, wait_until
from tests.support.tls import PrivateCA

pytest_plugins = ("tests.support.download_fixtures",)


def fetch(url, directory, policy=LOCAL, **kwargs):
    return fetch_to_directory(url, directory, policy=policy, **kwargs)


def failure(url, directory, policy=LOCAL, **kwargs) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(url, directory, policy, **kwargs)
    # Whatever went wrong, nothing half-written stays behind.
    assert not [n for n in listing(directory) if n.endswith(".part")]
    return caught.value


# --- success --------------------------------------------------------------------------


def test_a_big_file_arrives_byte_for_byte(remote, target_dir):
    size = 6 * 1024 * 1024 + 123
    url = remote.generated("/data/big.bin", size)
    progress: list[int] = []
    result = fetch(url, target_dir, on_progress=progress.append)
    assert result.path == target_dir / "big.bin"
    assert result.size == size
    assert result.path.read_bytes() == pattern_bytes(size)
    assert progress[-1] == size
    assert listing(target_dir) == ["big.bin"]


def test_plain_http_bodies_of_known_length_are_spliced_in_the_kernel(
    remote, target_dir, monkeypatch
):
    from ferry.downloads import fetch as fetch_module

    spliced: list[int] = []
    real = fetch_module._splice_rest

    def counting(*args, **kwargs):
        spliced.append(kwargs["total"] - kwargs["size"])
        return real(*args, **kwargs)

    monkeypatch.setattr(fetch_module, "_splice_rest", counting)
    size = 3 * 1024 * 1024 + 7
    result = fetch(remote.generated("/data/spliced.bin", size), target_dir)
    assert result.path.read_bytes() == pattern_bytes(size)
    assert spliced and 0 < spliced[0] < size


@pytest.mark.parametrize("announce", [True, False], ids=["spliced", "read"])
def test_written_windows_are_handed_to_the_disk_while_the_body_arrives(
    remote, target_dir, monkeypatch, announce
):
    # The final fsync then waits for the last window only, not for the whole file.
    handed: list[tuple[int, int]] = []

    def recording(fd, offset, length, flags):
        handed.append((offset, length))
        return 0

    monkeypatch.setattr(fetch_module, "WRITEBACK_WINDOW", 1 << 20)
    monkeypatch.setattr(fetch_module, "_sync_file_range", recording)
    size = 5 * 1024 * 1024 + 11
    result = fetch(remote.generated("/data/window.bin", size, announce=announce), target_dir)
    assert result.path.read_bytes() == pattern_bytes(size)
    # Contiguous windows of at least the window size, from the first byte on.
    assert handed and handed[0][0] == 0
    assert all(length >= 1 << 20 for _, length in handed)
    assert all(a + n == b for (a, n), (b, _) in zip(handed, handed[1:], strict=False))
    assert size - (1 << 20) <= handed[-1][0] + handed[-1][1] <= size


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


def test_headers_are_reported_before_the_body_with_the_chosen_name(remote, target_dir):
    header = ("Content-Disposition", "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf")
    url = remote.file("/get", b"x" * 10, [header]) + "?id=7"
    seen = []
    result = fetch(url, target_dir, on_headers=seen.append)
    info = seen[0]
    assert (info.status, info.content_length, info.filename) == (200, 10, "résumé.pdf")
    assert info.part_path.parent == target_dir and info.part_path.name.endswith(".part")
    assert result.path == target_dir / "résumé.pdf"


@pytest.mark.parametrize(
    "header",
    [
        'attachment; filename="../../escape.txt"',
        "attachment; filename=/tmp/escape.txt",
        "attachment; filename*=UTF-8''..%2F..%2Fescape.txt",
    ],
)
def test_hostile_content_disposition_stays_inside_the_directory(remote, target_dir, header):
    url = remote.file("/x", b"payload", [("Content-Disposition", header)])
    result = fetch(url, target_dir)
    assert result.path == target_dir / "escape.txt"
    assert listing(target_dir.parent) == ["files"]


def test_the_callers_name_wins(remote, target_dir):
    url = remote.file("/x.bin", b"1", [("Content-Disposition", "attachment; filename=header.bin")])
    assert fetch(url, target_dir, filename="chosen.bin").filename == "chosen.bin"


def test_existing_files_are_never_overwritten(remote, target_dir):
    (target_dir / "report.pdf").write_bytes(b"mine")
    (target_dir / "report (1).pdf").write_bytes(b"mine too")
    url = remote.file("/report.pdf", b"theirs")
    first = fetch(url, target_dir)
    second = fetch(url, target_dir)
    assert (first.filename, second.filename) == ("report (2).pdf", "report (3).pdf")
    assert (target_dir / "report.pdf").read_bytes() == b"mine"
    assert (target_dir / "report (1).pdf").read_bytes() == b"mine too"
    assert first.path.read_bytes() == b"theirs"


def test_a_much_taken_name_is_published_without_trying_every_taken_number(target_dir, monkeypatch):
    for number in range(200):
        (target_dir / fetch_module.names.numbered("index.html", number)).write_bytes(b"old")
    (target_dir / "index (57).html").unlink()
    part = target_dir / ".index.html.abc.part"
    part.write_bytes(b"new")
    claims = []
    real_claim = fetch_module._claim
    monkeypatch.setattr(
        fetch_module, "_claim", lambda p, t: claims.append(t.name) or real_claim(p, t)
    )
    path, name = fetch_module.publish(part, target_dir, "index.html")
    assert name == "index (57).html" and path.read_bytes() == b"new"
    assert claims == ["index.html", "index (57).html"]


def test_a_symlink_holding_the_name_is_not_followed(remote, target_dir, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep")
    (target_dir / "a.txt").symlink_to(outside)
    result = fetch(remote.file("/a.txt", b"new"), target_dir)
    assert result.filename == "a (1).txt"
    assert outside.read_bytes() == b"keep"


def test_concurrent_fetches_of_one_name_get_distinct_files(remote, target_dir):
    url = remote.generated("/same.bin", 300_000)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(fetch(url, target_dir))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.filename for r in results) == [
        "same (1).bin",
        "same (2).bin",
        "same (3).bin",
        "same.bin",
    ]
    assert all(r.path.read_bytes() == pattern_bytes(300_000) for r in results)


def test_redirects_are_followed_and_named_after_the_final_url(remote, target_dir):
    remote.file("/final/data.csv", b"a,b\n")
    remote.redirect("/go2", "/final/data.csv", status=307)
    url = remote.redirect("/go", remote.url("/go2"), status=301)
    result = fetch(url, target_dir)
    assert result.filename == "data.csv"
    assert [r.path for r in remote.requests] == ["/go", "/go2", "/final/data.csv"]


def test_the_host_header_names_the_host_while_the_checked_address_is_dialled(remote, target_dir):
    policy = dataclasses.replace(LOCAL, resolver=StubResolver({"files.test": ["127.0.0.1"]}))
    url = remote.file("/a", b"ok").replace("127.0.0.1", "files.test")
    fetch(url, target_dir, policy)
    assert remote.requests[0].headers["Host"] == f"files.test:{remote.port}"


# --- failures -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 410])
def test_missing_remote_files(remote, target_dir, status):
    error = failure(remote.status("/gone", status), target_dir)
    assert error.code == REMOTE_FILE_NOT_FOUND
    assert str(status) in error.message
    assert listing(target_dir) == []


@pytest.mark.parametrize("status", [500, 403, 304])
def test_other_error_statuses_name_the_status(remote, target_dir, status):
    error = failure(remote.status("/broken", status), target_dir)
    assert error.code == NETWORK_ERROR
    assert f"HTTP {status}" in error.message


def test_refused_connections(target_dir):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = failure(f"http://127.0.0.1:{port}/x", target_dir)
    assert error.code == NETWORK_ERROR
    assert "refused" in error.message


def test_connecting_too_long_is_a_timeout(target_dir):
    policy = dataclasses.replace(LOCAL, connect_timeout=0.3)
    with unanswered_port() as port:
        error = failure(f"http://127.0.0.1:{port}/x", target_dir, policy)
    assert (error.code, error.message) == (
        DOWNLOAD_TIMEOUT,
        "could not connect to 127.0.0.1 within 0.3 s",
    )


def test_names_that_do_not_resolve(target_dir):
    policy = dataclasses.replace(LOCAL, resolver=StubResolver({}))
    error = failure("http://nowhere.test/x", target_dir, policy)
    assert error.code == NETWORK_ERROR
    assert "could not resolve nowhere.test" in error.message


def test_tls_failures(remote, target_dir):
    error = failure(remote.file("/a", b"plain").replace("http:", "https:"), target_dir)
    assert error.code == NETWORK_ERROR
    assert "TLS" in error.message


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

        wrong_name = failure(server.url("/a.txt", host="other.test"), target_dir, trusting)
        assert (wrong_name.code, "TLS" in wrong_name.message) == (NETWORK_ERROR, True)
        system_store = dataclasses.replace(LOCAL, resolver=resolver)
        untrusted = failure(server.url("/a.txt", host="files.test"), target_dir, system_store)
        assert "certificate verify failed" in untrusted.message


def test_truncated_bodies_fail_and_leave_nothing(remote, target_dir):
    error = failure(remote.truncated("/cut", announced=100_000, sent=40_000), target_dir)
    assert error.code == NETWORK_ERROR
    assert "40000 of 100000" in error.message
    assert listing(target_dir) == []


def test_redirect_loops_and_long_chains_stop(remote, target_dir):
    remote.redirect("/loop-a", "/loop-b")
    remote.redirect("/loop-b", "/loop-a")
    error = failure(remote.url("/loop-a"), target_dir)
    assert (error.code, error.message) == (NETWORK_ERROR, "too many redirects (more than 5)")
    assert len(remote.requests) == 6

    for hop in range(3):
        remote.redirect(f"/chain{hop}", f"/chain{hop + 1}")
    remote.file("/chain3", b"end")
    strict = dataclasses.replace(LOCAL, max_redirects=2)
    assert failure(remote.url("/chain0"), target_dir, strict).code == NETWORK_ERROR
    assert fetch(remote.url("/chain0"), target_dir).filename == "chain3"


def test_redirects_to_other_schemes_are_refused(remote, target_dir):
    error = failure(remote.redirect("/r", "file:///etc/passwd"), target_dir)
    assert error.code == "INVALID_URL"
    assert "redirect to file:///etc/passwd refused" in error.message


def test_redirect_without_location(remote, target_dir):
    remote.route("/r", lambda h: h.send_plain(302, b""))
    assert failure(remote.url("/r"), target_dir).code == NETWORK_ERROR


def test_announced_size_over_the_limit_is_refused_before_writing(remote, target_dir):
    policy = dataclasses.replace(LOCAL, max_size=1000)
    error = failure(remote.generated("/big", 5000), target_dir, policy)
    assert error.code == FILE_TOO_LARGE
    assert "5000 bytes" in error.message
    assert listing(target_dir) == []


def test_size_limit_holds_for_chunked_bodies_without_a_length(remote, target_dir):
    policy = dataclasses.replace(LOCAL, max_size=1_000_000)
    assert (
        failure(remote.generated("/chunked", 3_000_000, announce=False), target_dir, policy).code
        == FILE_TOO_LARGE
    )
    assert failure(remote.endless("/endless"), target_dir, policy).code == FILE_TOO_LARGE
    assert listing(target_dir) == []


def test_size_limit_admits_a_file_of_exactly_that_size(remote, target_dir):
    policy = dataclasses.replace(LOCAL, max_size=4096)
    assert fetch(remote.generated("/exact", 4096, announce=False), target_dir, policy).size == 4096


def test_a_stalled_body_times_out(remote, target_dir):
    policy = dataclasses.replace(LOCAL, idle_timeout=0.3)
    error = failure(remote.stall("/stall"), target_dir, policy)
    assert error.code == DOWNLOAD_TIMEOUT
    assert "sent nothing for 0.3 s" in error.message


def test_a_server_that_never_answers_times_out(remote, target_dir):
    policy = dataclasses.replace(LOCAL, idle_timeout=0.3)
    assert (
        failure(remote.stall("/silent", before_headers=True), target_dir, policy).code
        == DOWNLOAD_TIMEOUT
    )


def test_the_total_deadline_ends_a_body_that_keeps_dripping(remote, target_dir):
    policy = dataclasses.replace(LOCAL, timeout=0.5, idle_timeout=30)
    error = failure(remote.trickle("/drip", pieces=200, pause=0.05), target_dir, policy)
    assert error.code == DOWNLOAD_TIMEOUT
    assert "longer than 0.5 s" in error.message


def test_the_total_deadline_also_covers_waiting_for_headers(remote, target_dir):
    policy = dataclasses.replace(LOCAL, timeout=0.3, idle_timeout=30)
    assert (
        failure(remote.stall("/silent", before_headers=True), target_dir, policy).code
        == DOWNLOAD_TIMEOUT
    )


def test_one_watchdog_ends_many_transfers_each_at_its_own_deadline(remote, target_dir, tmp_path):
    deadlines = [0.3, 0.6, 0.9]
    outcomes: dict[float, FetchError] = {}

    def run(deadline: float) -> None:
        policy = dataclasses.replace(LOCAL, timeout=deadline, idle_timeout=30)
        directory = tmp_path / str(deadline)
        directory.mkdir()
        with pytest.raises(FetchError) as caught:
            fetch(remote.stall(f"/stall-{deadline}"), directory, policy)
        outcomes[deadline] = caught.value

    threads = [threading.Thread(target=run, args=(d,)) for d in deadlines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert {d: e.code for d, e in outcomes.items()} == dict.fromkeys(deadlines, DOWNLOAD_TIMEOUT)
    for deadline, error in outcomes.items():
        assert f"longer than {deadline:g} s" in error.message
    # With nothing left to watch, its thread goes too.
    assert wait_until(lambda: "ferry-fetch-watchdog" not in {t.name for t in threading.enumerate()})


@pytest.mark.timeout(20)
def test_cancelling_stops_a_stalled_transfer(remote, target_dir):
    policy = dataclasses.replace(LOCAL, idle_timeout=60)
    cancel = threading.Event()
    url = remote.stall("/stall")
    threading.Thread(
        target=lambda: (
            wait_until(lambda: any(n.endswith(".part") for n in listing(target_dir)))
            and cancel.set()
        )
    ).start()
    error = failure(url, target_dir, policy, cancel=cancel)
    assert error.code == DOWNLOAD_CANCELLED
    assert listing(target_dir) == []


def test_a_missing_directory_is_a_write_error(remote, target_dir):
    with pytest.raises(FetchError) as caught:
        fetch(remote.file("/a", b"x"), target_dir / "gone")
    assert caught.value.code == WRITE_ERROR


DISK_FULL_CHILD = """
import os, resource, signal, sys
from pathlib import Path
from ferry.downloads.fetch import fetch_to_directory
from ferry.downloads.policy import FetchError, FetchPolicy
# With the file-size limit reached, writes fail with EFBIG as on a full quota.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
policy = FetchPolicy(allow_private_networks=True)
try:
    fetch_to_directory(sys.argv[1], Path(sys.argv[2]), policy=policy)
except FetchError as exc:
    print(exc.code)
print(sorted(os.listdir(sys.argv[2])))
"""


def test_a_full_disk_fails_cleanly(remote, target_dir):
    url = remote.generated("/big", 2_000_000)
    child = run_python(DISK_FULL_CHILD, url, str(target_dir))
    assert child.stdout.splitlines() == [DISK_FULL, "[]"], child.stderr


# --- segmented downloads ------------------------------------------------------------------


@pytest.fixture
def segmented(monkeypatch):
    """Files of 1 MiB and more are fetched in segments."""
    monkeypatch.setattr(fetch_module, "SEGMENTED_MIN_SIZE", 1 << 20)


def ranges_asked(remote) -> list[str | None]:
    return sorted((r.headers.get("Range") or "") for r in remote.requests)


def test_a_ranged_file_arrives_in_segments_byte_for_byte(remote, target_dir, segmented):
    size = 3 * 1024 * 1024 + 7
    url = remote.ranged("/big.bin", size)
    seen = []
    result = fetch(url, target_dir, on_progress=seen.append)
    assert result.size == size
    assert (target_dir / "big.bin").read_bytes() == pattern_bytes(size)
    assert listing(target_dir) == ["big.bin"]
    assert len(remote.requests) == fetch_module.SEGMENTS
    assert remote.connections == fetch_module.SEGMENTS
    assert ranges_asked(remote)[0] == ""  # the first request asks for the whole file
    assert seen[-1] == size and seen == sorted(seen)


def test_a_server_that_ignores_ranges_is_read_over_one_connection(remote, target_dir, segmented):
    size = 2 * 1024 * 1024
    url = remote.ranged("/big.bin", size, honour_range=False)
    assert fetch(url, target_dir).size == size
    assert (target_dir / "big.bin").read_bytes() == pattern_bytes(size)
    assert listing(target_dir) == ["big.bin"]


def test_small_files_are_never_segmented(remote, target_dir, segmented):
    url = remote.ranged("/small.bin", 500_000)
    fetch(url, target_dir)
    assert ranges_asked(remote) == [""]


def test_segmented_download_is_capped_before_any_body(remote, target_dir, segmented):
    url = remote.ranged("/big.bin", 2 * 1024 * 1024)
    policy = dataclasses.replace(LOCAL, max_size=1024 * 1024)
    assert failure(url, target_dir, policy).code == FILE_TOO_LARGE
    assert len(remote.requests) == 1


def test_cancel_ends_every_segment_and_leaves_nothing(remote, target_dir, segmented):
    url = remote.ranged("/slow.bin", 4 * 1024 * 1024, pause=0.05)
    cancel = threading.Event()
    started = threading.Event()

    def progress(size: int) -> None:
        if size > 256 * 1024:
            started.set()

    def cancel_soon() -> None:
        started.wait(20)
        cancel.set()

    threading.Thread(target=cancel_soon, daemon=True).start()
    error = failure(url, target_dir, cancel=cancel, on_progress=progress)
    assert error.code == DOWNLOAD_CANCELLED
    assert listing(target_dir) == []
    assert len(remote.requests) == fetch_module.SEGMENTS


def test_a_segment_cut_short_fails_the_whole_download(remote, target_dir, segmented):
    size = 2 * 1024 * 1024

    def handler(h) -> None:
        asked = h.headers.get("Range")
        if asked is None:
            h.send_head(200, [("Content-Length", str(size)), ("Accept-Ranges", "bytes")])
            h.wfile.write(pattern_bytes(size))
            return
        first, _, last = asked[len("bytes=") :].partition("-")
        length = int(last) - int(first) + 1
        h.send_head(
            206,
            [("Content-Length", str(length)), ("Content-Range", f"bytes {first}-{last}/{size}")],
        )
        h.wfile.write(pattern_bytes(length // 2, int(first)))

    url = remote.route("/cut.bin", handler)
    assert failure(url, target_dir).code == NETWORK_ERROR
    assert listing(target_dir) == []


def test_every_segment_connection_is_resolved_and_checked(remote, target_dir, internet, segmented):
    # The name points outside first, then (rebinding) at loopback for later connections.
    resolver = StubResolver({"files.example": [[PUBLIC_IP], ["127.0.0.1"]]})
    remote.ranged("/big.bin", 2 * 1024 * 1024)
    url = f"http://files.example:{remote.port}/big.bin"
    policy = FetchPolicy(resolver=resolver)
    error = failure(url, target_dir, policy)
    assert error.code == DOMAIN_BLOCKED
    assert internet.attempts == [PUBLIC_IP]
    assert resolver.calls == ["files.example", "files.example"]
