"""Which name a download gets, and that every name is one harmless path component."""

from __future__ import annotations

import pytest

from ferry.downloads.names import choose_name, name_from_disposition, numbered, part_name, safe_name


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('attachment; filename="../../.ssh/authorized_keys"', "authorized_keys"),
        ("attachment; filename=/etc/passwd", "passwd"),
        ('attachment; filename="..\\..\\windows\\win.ini"', "win.ini"),
        ('attachment; filename="C:\\temp\\evil.exe"', "evil.exe"),
        ('attachment; filename=".bashrc"', "bashrc"),
        ('attachment; filename="a\x00b\x07c.txt"', "abc.txt"),
        ('attachment; filename="say \\"hi\\".txt"', 'say "hi".txt'),
        ("attachment; filename*=UTF-8''%E2%82%AC%20rates.txt", "€ rates.txt"),
        ("attachment; filename*=utf-8'en'na%C3%AFve%2F..%2Fx.txt", "x.txt"),
        ("attachment; filename*=iso-8859-1''caf%E9.txt", "café.txt"),
        ("attachment; filename=\"plain.txt\"; filename*=UTF-8''fancy%E2%9C%93.txt", "fancy✓.txt"),
        ("attachment; filename*=UTF-8''%FF%FE.txt; filename=fallback.txt", "fallback.txt"),
        ('attachment; filename="caf\xc3\xa9.txt"', "café.txt"),
        ('attachment; filename=".."', None),
        ("inline", None),
    ],
)
def test_content_disposition_names(header, expected):
    assert name_from_disposition(header) == expected


def test_precedence_user_then_header_then_url_then_generated():
    header = "attachment; filename=from-header.csv"
    assert choose_name("mine.csv", disposition=header, url_path="/x/from-url.csv") == "mine.csv"
    assert choose_name(None, disposition=header, url_path="/x/from-url.csv") == "from-header.csv"
    assert choose_name(None, url_path="/x/from%20url.csv") == "from url.csv"
    assert choose_name(None, url_path="/x/") == "download"
    assert choose_name(None, url_path="/", content_type="application/pdf") == "download.pdf"


def test_a_name_the_user_types_is_also_reduced_to_a_basename():
    assert choose_name("../../etc/cron.d/job", url_path="/a.txt") == "job"
    assert choose_name("..", url_path="/a.txt") == "a.txt"


def test_users_may_ask_for_hidden_names_but_servers_may_not_give_them():
    assert choose_name(".env", url_path="/x") == ".env"
    assert choose_name(None, url_path="/.htaccess") == "htaccess"


def test_long_names_are_cut_to_255_bytes_keeping_the_extension():
    name = safe_name("é" * 300 + ".tar.gz")
    assert len(name.encode()) <= 255
    assert name.endswith("é.tar.gz")


@pytest.mark.parametrize("bad", [None, "", ".", "..", "...", "/", "\\", "\x00", " "])
def test_names_that_leave_nothing_usable(bad):
    assert safe_name(bad) is None


def test_numbered_alternatives_keep_the_extension_and_the_limit():
    assert numbered("report.pdf", 0) == "report.pdf"
    assert numbered("report.pdf", 2) == "report (2).pdf"
    assert numbered("backup.tar.gz", 1) == "backup (1).tar.gz"
    assert numbered("README", 3) == "README (3)"
    long = "x" * 251 + ".bin"
    assert len(numbered(long, 12).encode()) == 255
    assert numbered(long, 12).endswith(" (12).bin")


def test_part_names_are_hidden_and_fit_the_limit():
    assert part_name("a.txt", "abc") == ".a.txt.abc.part"
    assert len(part_name("y" * 255, "0123456789abcdef").encode()) == 255
