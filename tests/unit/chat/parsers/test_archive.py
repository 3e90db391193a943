"""Hostile and damaged zips: each is refused or skipped with a warning, within bounded memory."""

from __future__ import annotations

import stat
import struct
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from ferry.chat.parsers.archive import open_zip
from ferry.chat.parsers.base import ArchiveLimits, ImportFileError
from ferry.chat.parsers.csv_importer import CsvImporter
from ferry.chat.parsers.slack import SlackImporter
from tests.support.importers import FIXTURES, build_zip, prepare, prepare_fails

USERS_CSV = "alice, alice@example.com, Alice\n"


def test_a_file_that_is_not_a_zip_is_refused_with_a_readable_message(tmp_path: Path):
    source = tmp_path / "export.zip"
    source.write_text("username,email\nalice,alice@example.com\n")
    for importer in (CsvImporter(), SlackImporter()):
        message, sink = prepare_fails(importer, source)
        assert "not a zip archive" in message
        assert sink.written == 0


def test_an_empty_file_is_refused(tmp_path: Path):
    source = tmp_path / "empty.zip"
    source.write_bytes(b"")
    message, _ = prepare_fails(CsvImporter(), source)
    assert "not a zip archive" in message


def test_a_truncated_zip_is_refused(tmp_path: Path):
    whole = (FIXTURES / "slack-export-viewer" / "testarchive.zip").read_bytes()
    source = tmp_path / "cut.zip"
    source.write_bytes(whole[: len(whole) // 2])
    message, sink = prepare_fails(SlackImporter(), source)
    assert "truncated or damaged" in message
    assert sink.written == 0


def test_a_member_whose_data_is_corrupt_fails_the_import_readably(tmp_path: Path):
    rows = "".join(f"user{i}, user{i}@example.com, User {i * 7919 % 10007}\n" for i in range(5000))
    source = build_zip(tmp_path / "x.zip", {"users.csv": rows})
    raw = bytearray(source.read_bytes())
    raw[60:400] = bytes(340)  # inside the deflate stream of the only member
    source.write_bytes(bytes(raw))
    message, _ = prepare_fails(CsvImporter(), source)
    assert "users.csv" in message and "damaged" in message


@pytest.mark.parametrize(
    "name",
    [
        "../evil/users.csv",
        "/etc/users.csv",
        "..\\evil\\users.csv",
        "C:/evil/users.csv",
        "a/../../users.csv",
    ],
)
def test_zip_slip_names_are_skipped_with_a_warning(tmp_path: Path, name: str):
    source = build_zip(tmp_path / "x.zip", {name: USERS_CSV})
    message, sink = prepare_fails(CsvImporter(), source)
    assert message == "No valid record found in the import file."
    assert sink.written == 0
    assert sink.warned("Skipped archive entry", "evil" if "evil" in name else "users.csv")


def test_a_symlink_entry_is_skipped_and_its_target_never_read(tmp_path: Path):
    source = tmp_path / "x.zip"
    with zipfile.ZipFile(source, "w") as archive:
        link = zipfile.ZipInfo("users.csv")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    message, sink = prepare_fails(CsvImporter(), source)
    assert message == "No valid record found in the import file."
    assert sink.warned("users.csv", "symbolic link")


def test_a_compression_bomb_is_skipped_without_inflating_it(tmp_path: Path):
    source = tmp_path / "bomb.zip"
    with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("users.json", "[]")
        with archive.open("general/2020-01-01.json", "w") as member:
            chunk = b" " * (1024 * 1024)
            for _ in range(64):
                member.write(chunk)
        archive.writestr("channels.json", '[{"id": "C1", "name": "general"}]')
    tracemalloc.start()
    sink = prepare(SlackImporter(), source)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert sink.warned("general/2020-01-01.json", "compression bomb")
    assert sink.messages == []
    assert peak < 8 * 1024 * 1024


def test_a_member_that_inflates_past_its_declared_size_fails_while_read(tmp_path: Path):
    """The headers claim 100 bytes; the data holds far more. Reading stops, memory stays flat."""
    source = tmp_path / "liar.zip"
    body = b"alice, alice@example.com, Alice\n" * 200_000
    with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("users.csv", body)
    raw = bytearray(source.read_bytes())
    size = struct.pack("<I", len(body))
    for offset in (i for i in range(len(raw) - 3) if raw[i : i + 4] == size):
        raw[offset : offset + 4] = struct.pack("<I", 100)
    source.write_bytes(bytes(raw))
    tracemalloc.start()
    message, _ = prepare_fails(CsvImporter(), source)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert "users.csv" in message
    assert peak < 8 * 1024 * 1024


def test_the_inflate_limit_is_enforced_by_counting_bytes(tmp_path: Path):
    source = build_zip(tmp_path / "x.zip", {"users.csv": USERS_CSV * 100})
    limits = ArchiveLimits(max_member_size=len(USERS_CSV) * 100 - 1)
    message, sink = prepare_fails(CsvImporter(), source, limits=limits)
    assert message == "No valid record found in the import file."
    assert sink.warned("users.csv", "allowed for one file")


def test_too_many_members_are_refused_before_the_directory_is_loaded(tmp_path: Path):
    source = build_zip(tmp_path / "x.zip", {f"general/{i}.csv": "" for i in range(30)})
    message, _ = prepare_fails(CsvImporter(), source, limits=ArchiveLimits(max_members=10))
    assert "30 entries" in message


def test_the_total_expanded_size_is_bounded(tmp_path: Path):
    source = build_zip(tmp_path / "x.zip", {f"general/{i}.csv": USERS_CSV * 10 for i in range(5)})
    message, _ = prepare_fails(CsvImporter(), source, limits=ArchiveLimits(max_total_size=500))
    assert "expand" in message


def test_a_nested_archive_is_just_a_file(tmp_path: Path):
    inner = build_zip(tmp_path / "inner.zip", {"users.csv": USERS_CSV})
    source = build_zip(
        tmp_path / "x.zip", {"users.csv": USERS_CSV, "backup/inner.zip": inner.read_bytes()}
    )
    with open_zip(source, ArchiveLimits(), print) as archive:
        assert sorted(m.path for m in archive.members) == ["backup/inner.zip", "users.csv"]
    sink = prepare(CsvImporter(), source)
    assert [u["username"] for u in sink.users] == ["alice"]


def test_one_top_folder_and_mac_clutter_are_looked_through(tmp_path: Path):
    source = build_zip(
        tmp_path / "x.zip",
        {
            "export/users.csv": USERS_CSV,
            "export/.DS_Store": b"\0\0",
            "__MACOSX/export/._users.csv": b"\0\0",
            "export/general/messages.csv": "alice, 1479162481336, hi\n",
        },
    )
    with open_zip(source, ArchiveLimits(), print, ["users.csv"]) as archive:
        assert archive.top_folder == "export"
        assert sorted(m.path for m in archive.members) == ["general/messages.csv", "users.csv"]


def test_a_lone_folder_without_root_files_is_not_mistaken_for_a_wrapper(tmp_path: Path):
    source = build_zip(tmp_path / "x.zip", {"directmessages/a.csv": "a, b, 1, hi\n"})
    with open_zip(source, ArchiveLimits(), print, ["users.csv", "directmessages"]) as archive:
        assert archive.top_folder is None


def test_a_missing_file_is_an_import_file_error(tmp_path: Path):
    with pytest.raises(ImportFileError, match="cannot be opened"):
        open_zip(tmp_path / "missing.zip", ArchiveLimits(), print)


def test_an_unsupported_compression_method_is_skipped_with_advice(tmp_path: Path):
    source = tmp_path / "x.zip"
    with zipfile.ZipFile(source, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("users.csv", USERS_CSV)
    raw = bytearray(source.read_bytes())
    deflate64 = struct.pack("<H", 9)
    local, central = raw.find(b"PK\x03\x04"), raw.find(b"PK\x01\x02")
    raw[local + 8 : local + 10] = deflate64
    raw[central + 10 : central + 12] = deflate64
    source.write_bytes(bytes(raw))
    message, sink = prepare_fails(CsvImporter(), source)
    assert message == "No valid record found in the import file."
    assert sink.warned("users.csv", "compression method 9 is not supported")


def test_a_flood_of_hostile_entries_gives_a_few_warnings_and_a_count(tmp_path: Path):
    source = build_zip(tmp_path / "x.zip", {f"../evil{i}.csv": "" for i in range(100)})
    _, sink = prepare_fails(CsvImporter(), source)
    assert len(sink.warnings) == 21
    assert sink.warned("80 more problems")
