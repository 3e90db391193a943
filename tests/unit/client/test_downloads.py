"""`ferry download`'s input files and usage errors, and the download ids `ferry cancel`
accepts."""

from __future__ import annotations

import argparse

import pytest

from ferry.client import downloads as downloads_module
from ferry.client.commands import add_client_commands
from ferry.client.downloads import (
    AmbiguousDownload,
    UnknownDownload,
    resolve_download_id,
    urls_from_lines,
)


def test_input_file_lines_skip_blanks_and_comments():
    lines = ["# mirrors\n", "\n", "  https://a.test/1.iso \n", "\t\n", "   # https://b.test/\n"]
    lines += ["https://c.test/#fragment\r\n", "http://d.test/x"]
    assert urls_from_lines(lines) == [
        "https://a.test/1.iso",
        "https://c.test/#fragment",
        "http://d.test/x",
    ]


# --- download ids given by a unique prefix -------------------------------------------------

ACTIVE_ID = "3f2a9c10-0000-4000-8000-000000000001"
FINISHED_ID = "3f2b7700-0000-4000-8000-000000000002"
OTHER_ID = "a0000000-0000-4000-8000-000000000003"


class FakeDownloads:
    """The two lists a prefix is resolved against, and which of them were asked for."""

    def __init__(self, active=(ACTIVE_ID,), history=(FINISHED_ID, OTHER_ID)):
        self.active = [{"id": download_id} for download_id in active]
        self.finished = [{"id": download_id} for download_id in history]
        self.asked: list[str] = []
        self.cancelled: list[str] = []

    def active_downloads(self):
        self.asked.append("active")
        return self.active

    def history(self):
        self.asked.append("history")
        return self.finished

    def cancel(self, download_id):
        self.cancelled.append(download_id)
        return {"id": download_id, "file_path": "Downloads/a.iso"}


def test_a_unique_prefix_resolves_to_the_download_in_either_list():
    assert resolve_download_id(FakeDownloads(), "3f2a") == ACTIVE_ID
    assert resolve_download_id(FakeDownloads(), "3F2B7") == FINISHED_ID
    assert resolve_download_id(FakeDownloads(), "a") == OTHER_ID


def test_a_full_id_is_used_without_a_lookup():
    downloads = FakeDownloads(active=(), history=())
    assert resolve_download_id(downloads, OTHER_ID) == OTHER_ID
    assert downloads.asked == []


def test_an_ambiguous_prefix_names_its_candidates():
    with pytest.raises(AmbiguousDownload) as raised:
        resolve_download_id(FakeDownloads(), "3f2")
    assert ACTIVE_ID in str(raised.value) and FINISHED_ID in str(raised.value)
    assert OTHER_ID not in str(raised.value)


def test_an_ambiguous_prefix_lists_at_most_ten_candidates():
    many = [f"bbbbbbbb-0000-4000-8000-{n:012d}" for n in range(25)]
    with pytest.raises(AmbiguousDownload) as raised:
        resolve_download_id(FakeDownloads(active=many[:5], history=many[5:]), "bbbb")
    message = str(raised.value)
    assert sum(download_id in message for download_id in many) == 10
    assert "25 downloads" in message and "15 more" in message


def test_an_unknown_prefix_says_so():
    for prefix in ("ffff", ""):
        with pytest.raises(UnknownDownload, match="no download of yours"):
            resolve_download_id(FakeDownloads(), prefix)


# --- usage errors: exit status 2 and one `ferry: ...` line, before anything is sent --------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ferry")
    add_client_commands(parser.add_subparsers())
    return parser


def _run(monkeypatch, client, *argv: str) -> int:
    monkeypatch.setattr(downloads_module, "client_for", lambda server, token: client)
    args = _parser().parse_args(list(argv))
    return args.run(args)


def _usage_error(capsys, run) -> str:
    with pytest.raises(SystemExit) as exited:
        run()
    assert exited.value.code == 2
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    assert any(
        line.startswith(("ferry download: error: ", "ferry cancel: error: "))
        for line in stderr.splitlines()
    )
    return stderr


def test_cancel_with_a_prefix_cancels_the_one_download_it_names(monkeypatch):
    downloads = FakeDownloads()
    assert _run(monkeypatch, downloads, "cancel", "3f2a") == 0
    assert downloads.cancelled == [ACTIVE_ID]


def test_cancel_with_an_ambiguous_or_unknown_prefix_is_a_usage_error(monkeypatch, capsys):
    downloads = FakeDownloads()
    message = _usage_error(capsys, lambda: _run(monkeypatch, downloads, "cancel", "3f2"))
    assert ACTIVE_ID in message and FINISHED_ID in message
    message = _usage_error(capsys, lambda: _run(monkeypatch, downloads, "cancel", "9"))
    assert "no download of yours" in message
    assert downloads.cancelled == []


class FileOnServer:
    """A server on which every path is a file; starting anything is a failure of the test."""

    def is_file(self, path):
        return True

    def start_download(self, *args, **kwargs):
        raise AssertionError("a download was started")

    start_downloads = start_download


def test_download_to_a_file_on_the_server_is_a_usage_error_before_reading_input(
    monkeypatch, capsys
):
    def no_reading(name):
        raise AssertionError("the input was read")

    monkeypatch.setattr(downloads_module, "_read_input_file", no_reading)
    message = _usage_error(
        capsys,
        lambda: _run(monkeypatch, FileOnServer(), "download", "-i", "-", "--to", "notes.txt"),
    )
    assert "--to names a file on the server" in message and "notes.txt" in message


def test_an_input_file_that_is_a_directory_is_a_usage_error(monkeypatch, capsys, tmp_path):
    message = _usage_error(
        capsys,
        lambda: _run(monkeypatch, FileOnServer(), "download", "-i", str(tmp_path), "--to", "d"),
    )
    assert "is a directory" in message


def test_a_timeout_below_one_second_is_a_usage_error(monkeypatch, capsys):
    message = _usage_error(
        capsys,
        lambda: _run(
            monkeypatch, FileOnServer(), "download", "https://a.test/", "--to", "d", "--timeout=0"
        ),
    )
    assert "--timeout" in message
