"""`ferry put` streams exactly the bytes it announces, and the transfer bar is drawn on
a terminal only."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from ferry.client.api import ClientError
from ferry.client.file_commands import FileSlice
from ferry.client.render import transfer_progress


def test_a_slice_reads_its_length_from_where_the_file_stands(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(100)))
    reported: list[int] = []
    with path.open("rb") as source:
        source.seek(10)
        body = FileSlice(source, 50, reported.append)
        assert len(body) == 50
        read = b"".join(iter(lambda: body.read(16), b""))
    assert read == bytes(range(10, 60))
    assert sum(reported) == 50 and reported[0] == 16


def test_a_file_that_shrinks_under_the_upload_is_an_error(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"abc")
    with path.open("rb") as source:
        body = FileSlice(source, 10, lambda _: None)
        assert body.read() == b"abc"
        with pytest.raises(ClientError, match="shrank"):
            body.read()


@pytest.mark.parametrize("terminal", [True, False])
def test_the_transfer_bar_is_drawn_on_a_terminal_only(terminal):
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=terminal, width=100)
    with transfer_progress(console) as progress:
        task = progress.add_task("put reports/a.pdf", total=2_000_000)
        progress.advance(task, 2_000_000)
    shown = screen.getvalue()
    if terminal:
        assert "put reports/a.pdf" in shown and "100%" in shown and "2.0 MB" in shown
    else:
        assert shown == ""
