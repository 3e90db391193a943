"""Synthetic CSV and Slack exports: layout, counts, determinism and flat memory."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tracemalloc
import zipfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ferry.chat.generate import file_content, write_csv_export, write_slack_export

REPO = Path(__file__).resolve().parents[3]


def csv_rows(archive: zipfile.ZipFile, name: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(archive.read(name).decode("utf-8"))))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- CSV ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def csv_export(tmp_path_factory):
    path = tmp_path_factory.mktemp("csv") / "export.zip"
    return path, write_csv_export(path, messages=3_001, channels=6, users=30, seed=7)


def test_csv_layout_is_rocketchat_flat_zip(csv_export):
    path, summary = csv_export
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert archive.testzip() is None
        users = csv_rows(archive, "users.csv")
        channels = csv_rows(archive, "channels.csv")
    assert names[:2] == ["users.csv", "channels.csv"]
    assert set(names[2:]) == {f"channel-{c}/messages.csv" for c in range(6)} | {
        "directmessages/messages.csv"
    }
    # No header rows: the first row is already a user and a channel.
    assert users[0] == ["user0000", "user0000@example.com", "User 0"] and len(users) == 30
    assert len(channels) == summary.channels == 6
    assert all(len(row) == 4 and row[2] in ("public", "private") for row in channels)
    assert sum(row[2] == "private" for row in channels) == summary.private_channels > 0
    assert all(row[1] == row[3].split(";")[0] for row in channels)


def test_csv_messages_add_up_and_reference_known_people(csv_export):
    path, summary = csv_export
    with zipfile.ZipFile(path) as archive:
        usernames = {row[0] for row in csv_rows(archive, "users.csv")}
        members = {row[0]: set(row[3].split(";")) for row in csv_rows(archive, "channels.csv")}
        total = 0
        for channel, people in members.items():
            rows = csv_rows(archive, f"{channel}/messages.csv")
            total += len(rows)
            assert all(len(row) == 3 and row[0] in people for row in rows)
            stamps = [int(row[1]) for row in rows]
            assert stamps == sorted(stamps) and stamps[0] > 1_500_000_000_000  # epoch ms
        direct = csv_rows(archive, "directmessages/messages.csv")
    assert all(len(row) == 4 and row[0] != row[1] for row in direct)
    assert {row[0] for row in direct} | {row[1] for row in direct} <= usernames
    assert len({frozenset(row[:2]) for row in direct}) == summary.direct
    assert total + len(direct) == summary.messages == 3_001
    assert any("\n" in row[-1] for row in direct) or any('"' in row[-1] for row in direct)


def test_csv_is_deterministic_for_a_seed(tmp_path, csv_export):
    path, _ = csv_export
    again, other = tmp_path / "again.zip", tmp_path / "other.zip"
    write_csv_export(again, messages=3_001, channels=6, users=30, seed=7)
    write_csv_export(other, messages=3_001, channels=6, users=30, seed=8)
    assert digest(again) == digest(path) != digest(other)


# -- Slack ----------------------------------------------------------------------

BASE = "http://127.0.0.1:8765/slack"


@pytest.fixture(scope="module")
def slack_export(tmp_path_factory):
    path = tmp_path_factory.mktemp("slack") / "export.zip"
    summary = write_slack_export(path, messages=4_000, channels=5, users=20, seed=3, base_url=BASE)
    with zipfile.ZipFile(path) as archive:
        files = {name: json.loads(archive.read(name)) for name in archive.namelist()}
    return path, summary, files


def day_files(files: dict) -> dict[str, list[dict]]:
    return {name: body for name, body in files.items() if "/" in name}


def all_messages(files: dict) -> list[dict]:
    return [m for body in day_files(files).values() for m in body]


def test_slack_top_level_files_describe_the_workspace(slack_export):
    _, summary, files = slack_export
    users, channels, groups = files["users.json"], files["channels.json"], files["groups.json"]
    mpims, dms = files["mpims.json"], files["dms.json"]
    assert len(users) == summary.users == 20
    assert {"id", "name", "deleted", "is_bot", "tz_offset", "profile"} <= set(users[0])
    assert any("email" not in u["profile"] for u in users)
    assert len(channels) + len(groups) == summary.channels == 5
    assert len(groups) == summary.private_channels > 0
    assert sum(c["is_general"] for c in channels) == 1
    for room in channels + groups:
        assert room["creator"] in room["members"] and room["topic"]["value"]
    assert len(mpims) == 1 and len(mpims[0]["members"]) == 3
    assert len(mpims) + len(dms) == summary.direct and all(len(d["members"]) == 2 for d in dms)


def test_slack_day_files_sit_in_conversation_folders(slack_export):
    _, summary, files = slack_export
    folders = {c["name"] for c in files["channels.json"] + files["groups.json"]}
    folders |= {m["name"] for m in files["mpims.json"]} | {d["id"] for d in files["dms.json"]}
    days = day_files(files)
    assert {name.split("/")[0] for name in days} == folders
    for name, body in days.items():
        assert re.fullmatch(r"[^/]+/\d{4}-\d{2}-\d{2}\.json", name)
        for message in body:
            assert re.fullmatch(r"\d{10}\.\d{6}", message["ts"])
            day = datetime.fromtimestamp(float(message["ts"]), UTC).strftime("%Y-%m-%d")
            assert name.endswith(f"/{day}.json")
    assert len(all_messages(files)) == summary.messages == 4_000


def test_slack_threads_are_consistent(slack_export):
    _, summary, files = slack_export
    for body_name, body in day_files(files).items():
        assert body, body_name
    by_folder: dict[str, list[dict]] = {}
    for name, body in sorted(day_files(files).items()):
        by_folder.setdefault(name.split("/")[0], []).extend(body)
    parents = replies = 0
    for messages in by_folder.values():
        stamps = [m["ts"] for m in messages]
        assert len(set(stamps)) == len(stamps)
        for parent in (m for m in messages if m.get("reply_count")):
            parents += 1
            thread = [m for m in messages if m.get("thread_ts") == parent["ts"] and m is not parent]
            replies += len(thread)
            assert parent["thread_ts"] == parent["ts"] and parent["reply_count"] == len(thread)
            assert parent["latest_reply"] == max(m["ts"] for m in thread)
            assert parent["replies"] == [{"user": m["user"], "ts": m["ts"]} for m in thread]
            assert set(parent["reply_users"]) == {m["user"] for m in thread}
    assert parents == summary.threads > 0 and replies == summary.replies


def test_slack_messages_carry_every_feature(slack_export):
    _, summary, files = slack_export
    messages = all_messages(files)
    user_ids = {u["id"] for u in files["users.json"]}
    channel_ids = {c["id"]: c["name"] for c in files["channels.json"]}
    assert {m["user"] for m in messages} <= user_ids
    mentions = [u for m in messages for u in re.findall(r"<@(U\w+)>", m["text"])]
    links = re.findall(r"<#(C\w+)\|([^>]+)>", " ".join(m["text"] for m in messages))
    assert mentions and set(mentions) <= user_ids
    assert links and all(channel_ids[cid] == name for cid, name in links)
    subtypes = Counter(m.get("subtype") for m in messages)
    assert subtypes["channel_join"] == summary.channels and subtypes["thread_broadcast"] > 0
    reactions = [r for m in messages for r in m.get("reactions", [])]
    assert len(reactions) == summary.reactions > 0
    assert all(r["count"] == len(r["users"]) and r["name"] for r in reactions)
    edits = [m for m in messages if "edited" in m]
    assert len(edits) == summary.edits > 0
    assert all(float(m["edited"]["ts"]) > float(m["ts"]) for m in edits)


def test_slack_files_point_at_the_base_url_with_servable_bytes(slack_export):
    _, summary, files = slack_export
    shared = [f for m in all_messages(files) for f in m.get("files", [])]
    assert len(shared) == summary.files > 0
    assert len({f["id"] for f in shared}) == len(shared)
    for item in shared:
        assert item["url_private_download"].startswith(f"{BASE}/files/{item['id']}/")
        assert item["size"] == len(file_content(item["id"])) and not item["is_external"]
    assert file_content(shared[0]["id"]) == file_content(shared[0]["id"])


def test_slack_is_deterministic_for_a_seed(tmp_path, slack_export):
    path, _, _ = slack_export
    again, other = tmp_path / "again.zip", tmp_path / "other.zip"
    write_slack_export(again, messages=4_000, channels=5, users=20, seed=3, base_url=BASE)
    write_slack_export(other, messages=4_000, channels=5, users=20, seed=4, base_url=BASE)
    assert digest(again) == digest(path) != digest(other)


def test_all_messages_can_go_to_direct_conversations(tmp_path):
    summary = write_slack_export(tmp_path / "s.zip", messages=50, channels=0)
    csv_summary = write_csv_export(tmp_path / "c.zip", messages=50, channels=0)
    assert summary.messages == csv_summary.messages == 50
    with zipfile.ZipFile(tmp_path / "c.zip") as archive:
        assert len(csv_rows(archive, "directmessages/messages.csv")) == 50
        assert archive.read("channels.csv") == b""


@pytest.mark.parametrize("kind", ["csv", "slack"])
def test_memory_does_not_grow_with_the_message_count(tmp_path, kind):
    write = write_csv_export if kind == "csv" else write_slack_export

    def peak(messages: int) -> int:
        tracemalloc.start()
        try:
            write(tmp_path / f"{messages}.zip", messages=messages, channels=2)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(1_000), peak(15_000)
    assert large < small * 1.5 + 256 * 1024


def test_command_line(tmp_path):
    out = tmp_path / "cli.zip"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "ferry.chat.generate", "slack", "--messages", "300",
         "--channels", "3", "--seed", "5", "--base-url", "http://files.test", "--out", str(out)],
        capture_output=True, text=True, check=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    report = json.loads(result.stdout)
    assert report["messages"] == 300 and report["channels"] == 3
    with zipfile.ZipFile(out) as archive:
        assert {"users.json", "channels.json", "dms.json"} <= set(archive.namelist())
        assert b"http://files.test/files/" in b"".join(
            archive.read(n) for n in archive.namelist() if "/" in n
        )
    bad = subprocess.run(
        [sys.executable, "-m", "ferry.chat.generate", "csv", "--messages", "-1",
         "--channels", "1", "--out", str(out)],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert bad.returncode == 2 and "--messages" in bad.stderr
