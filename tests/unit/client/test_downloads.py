"""The URLs `ferry download` reads from an input file."""

from __future__ import annotations

from ferry.client.downloads import urls_from_lines


def test_input_file_lines_skip_blanks_and_comments():
    lines = ["# mirrors\n", "\n", "  https://a.test/1.iso \n", "\t\n", "   # https://b.test/\n"]
    lines += ["https://c.test/#fragment\r\n", "http://d.test/x"]
    assert urls_from_lines(lines) == [
        "https://a.test/1.iso",
        "https://c.test/#fragment",
        "http://d.test/x",
    ]
