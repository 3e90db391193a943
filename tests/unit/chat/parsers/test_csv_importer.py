"""Rocket.Chat's CSV zip, built from the real sample parts, and the faults Ferry repairs."""

from __future__ import annotations

import tracemalloc
import zipfile
from pathlib import Path

from ferry.chat.parsers import REGISTRY
from ferry.chat.parsers.base import PrepareOptions
from ferry.chat.parsers.csv_importer import CsvImporter
from tests.support.importers import FIXTURES, RecordingSink, build_zip, prepare, prepare_fails

SAMPLES = FIXTURES / "rocketchat"


def sample_export(tmp_path: Path, top: str = "", **extra) -> Path:
    entries = {
        "users.csv": (SAMPLES / "csv_import_users.csv").read_bytes(),
        "channels.csv": (SAMPLES / "csv_import_rooms.csv").read_bytes(),
        "directmessages/messages1.csv": (SAMPLES / "dm_messages.csv").read_bytes(),
        "imported-csv-channel-with-members/messages.csv": (
            '"billy.bob","1479162481000","hello, channel"\n"billy.joe","1479162482500","hi back"\n'
        ),
    }
    entries.update(extra)
    return build_zip(
        tmp_path / "export.zip", {f"{top}{name}": data for name, data in entries.items()}
    )


def test_registry_names_the_csv_importer_as_rocket_chat_does():
    assert REGISTRY["csv"].key == "csv" and REGISTRY["csv"].name == "CSV"


def test_the_sample_export_round_trips(tmp_path: Path):
    progress: list[float] = []
    sink = prepare(CsvImporter(), sample_export(tmp_path), on_progress=progress.append)

    assert sink.warnings == []
    assert progress == sorted(progress) and progress[-1] == 100.0
    bob = sink.user("billy.bob")
    assert bob["emails"] == ["billy.bob@example.com"]  # the sample has spaces after commas
    assert bob["name"] == "Billy Bob Jr." and bob["type"] == "user"

    assert sink.channel("imported-csv-group")["t"] == "p"
    public = sink.channel("imported-csv-channel-with-members")
    assert public["t"] == "c"
    assert public["users"] == ["billy.bob", "billy.joe"]
    assert public["u"] == {"_id": "billy.bob"}
    assert sink.channel("imported-csv-channel")["users"] == []

    dm = sink.channel("billy.bob/billy.joe")
    assert dm["t"] == "d" and sorted(dm["users"]) == ["billy.bob", "billy.joe"]
    assert [c["t"] for c in sink.channels].count("d") == 1  # one DM for both directions

    dm_texts = {m["msg"]: m for m in sink.messages if m["rid"] == "billy.bob/billy.joe"}
    assert set(dm_texts) == {"this is a test message", "this is another message, a test message"}
    assert dm_texts["this is a test message"]["u"] == {"_id": "billy.joe"}
    assert dm_texts["this is a test message"]["ts"] == 1479162481.336

    in_channel = [m for m in sink.messages if m["rid"] == "imported-csv-channel-with-members"]
    assert [(m["u"]["_id"], m["msg"], m["ts"]) for m in in_channel] == [
        ("billy.bob", "hello, channel", 1479162481.0),
        ("billy.joe", "hi back", 1479162482.5),
    ]


def test_message_ids_are_stable_across_reimports_and_unique(tmp_path: Path):
    source = sample_export(tmp_path)
    first = [m["_id"] for m in prepare(CsvImporter(), source).messages]
    second = [m["_id"] for m in prepare(CsvImporter(), source).messages]
    assert first == second
    assert len(set(first)) == len(first) == 4
    assert all(i.startswith("csv-") for i in first)


def test_an_export_zipped_with_its_folder_and_mac_clutter_imports_the_same(tmp_path: Path):
    (tmp_path / "flat").mkdir()
    flat = prepare(CsvImporter(), sample_export(tmp_path / "flat"))
    source = sample_export(tmp_path, top="my export/", **{".DS_Store": b"\0"})
    with zipfile.ZipFile(source, "a") as archive:
        archive.writestr("__MACOSX/my export/._users.csv", b"\0\5\26\7")
    wrapped = prepare(CsvImporter(), source)
    assert wrapped.warnings == []
    assert wrapped.users == flat.users
    assert wrapped.channels == flat.channels
    assert wrapped.messages == flat.messages


def test_messages_in_a_folder_missing_from_channels_csv_are_kept_and_reported(tmp_path: Path):
    source = sample_export(
        tmp_path, **{"random/messages.csv": "billy.bob, 1479162490000, anyone?\n"}
    )
    sink = prepare(CsvImporter(), source)
    assert sink.warned("'random'", "not in channels.csv", "public channel")
    channel = sink.channel("random")
    assert channel["t"] == "c" and channel["name"] == "random" and channel["users"] == ["billy.bob"]
    assert [m["msg"] for m in sink.messages if m["rid"] == "random"] == ["anyone?"]


def test_bad_rows_are_skipped_with_file_and_line_and_the_rest_is_kept(tmp_path: Path):
    rows = (
        "billy.bob, 1479162481000, fine\n"
        "billy.bob, yesterday, bad time\n"
        "\n"
        "billy.bob, 1479162481000\n"
        '"billy.joe", "1479162483000", "spans\ntwo lines"\n'
        ", 1479162484000, nobody\n"
        "billy.joe, 1479162485000, also fine\n"
    )
    sink = prepare(CsvImporter(), sample_export(tmp_path, **{"imported-csv-channel/m.csv": rows}))
    texts = [m["msg"] for m in sink.messages if m["rid"] == "imported-csv-channel"]
    assert texts == ["fine", "spans\ntwo lines", "also fine"]
    assert sink.warned("imported-csv-channel/m.csv:2:", "'yesterday'", "epoch milliseconds")
    assert sink.warned("imported-csv-channel/m.csv:4:", "expected 3 columns")
    assert sink.warned("imported-csv-channel/m.csv:7:", "no username")


def test_a_direct_message_without_a_recipient_is_skipped(tmp_path: Path):
    source = sample_export(
        tmp_path, **{"DirectMessages/more.csv": "billy.bob, , 1479162481000, hello?\n"}
    )
    sink = prepare(CsvImporter(), source)
    assert sink.warned("DirectMessages/more.csv:1:", "other_username")
    assert "hello?" not in [m["msg"] for m in sink.messages]


def test_latin1_files_are_read_and_reported(tmp_path: Path):
    users = "zoe, zoe@example.com, Zoë Ça\n".encode("latin-1")
    sink = prepare(CsvImporter(), build_zip(tmp_path / "x.zip", {"users.csv": users}))
    assert sink.user("zoe")["name"] == "Zoë Ça"
    assert sink.warned("users.csv is not valid UTF-8")


def test_a_bom_does_not_leak_into_the_first_username(tmp_path: Path):
    users = "\ufeffzoe, zoe@example.com, Zoe\n".encode()
    sink = prepare(CsvImporter(), build_zip(tmp_path / "x.zip", {"users.csv": users}))
    assert sink.users[0]["username"] == "zoe" and sink.warnings == []


def test_authors_missing_from_users_csv_are_matched_to_existing_users(tmp_path: Path):
    source = build_zip(
        tmp_path / "x.zip",
        {"general/m.csv": "admin, 1479162481000, hi\nghost, 1479162482000, boo\n"},
    )
    lookups: list[str] = []

    def existing(username: str) -> str | None:
        lookups.append(username)
        return "ferry-user-1" if username == "admin" else None

    sink = prepare(CsvImporter(), source, existing_user=existing)
    assert [m["u"]["_id"] for m in sink.messages] == ["ferry-user-1", "ghost"]
    assert sorted(lookups) == ["admin", "ghost"]
    assert sink.warned("ghost", "neither in users.csv nor existing users")


def test_an_export_without_any_record_is_refused(tmp_path: Path):
    source = build_zip(tmp_path / "x.zip", {"users.csv": "\n\n", "readme.txt": "hello"})
    message, sink = prepare_fails(CsvImporter(), source)
    assert message == "No valid record found in the import file."
    assert sink.warned("readme.txt", "ignored")


def test_a_large_message_file_is_streamed(tmp_path: Path):
    filler = "lorem ipsum " * 25
    rows = "".join(f"user{i % 50}, {1479162481000 + i}, {filler}{i}\n" for i in range(30_000))
    source = build_zip(tmp_path / "x.zip", {"general/m.csv": rows})

    class Counting(RecordingSink):
        def add_message(self, message: dict) -> None:
            self.count = getattr(self, "count", 0) + 1

    sink = Counting()
    tracemalloc.start()
    CsvImporter().prepare(source, sink, PrepareOptions())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert sink.count == 30_000
    assert len(rows) > 8_000_000 and peak < 3 * 1024 * 1024
