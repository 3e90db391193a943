"""What the client prints for a download's end, its durations and sizes, and a table sent
to a pipe."""

from __future__ import annotations

import pytest

from ferry.client.render import bytes_text, duration_text, outcome_line, print_table


def test_a_completed_download_reads_its_path_size_and_time():
    entry = {
        "status": "completed",
        "file_path": "in/a.iso",
        "total_bytes": 2_500_000,
        "start_time": 100,
        "end_time": 3825,
    }
    assert outcome_line(entry) == (True, "completed in/a.iso (2.5 MB in 1:02:05)")


@pytest.mark.parametrize(
    ("entry", "line"),
    [
        (
            {"status": "failed", "file_path": "in/a", "error": "HTTP_ERROR", "message": "404"},
            "HTTP_ERROR: 404 (in/a failed)",
        ),
        ({"status": "cancelled", "id": "d1"}, "CANCELLED (d1 cancelled)"),
    ],
)
def test_a_download_that_did_not_complete_reads_its_code_and_status(entry, line):
    assert outcome_line(entry) == (False, line)


def test_unknown_durations_and_sizes_are_shown_as_such():
    assert (duration_text(None), duration_text(59.9), bytes_text(None)) == (
        "-:--:--",
        "0:00:59",
        "?",
    )


def test_a_table_in_a_pipe_prints_a_line_a_row_never_cut(capsys):
    long_path = "in/" + "a long name " * 15 + ".iso"
    print_table(("id", "path"), [("d1", long_path), ("d2", "in/b")])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(maxsplit=1) for line in lines] == [
        ["id", "path"],
        ["d1", long_path],
        ["d2", "in/b"],
    ]
