"""Benchmark of staging -> workspace import and history reads.

    PYTHONPATH=. python bench/bench_workspace.py            # all scenarios, one process each
    PYTHONPATH=. python bench/bench_workspace.py --messages 100000 --rooms 20
    PYTHONPATH=. python bench/bench_workspace.py --messages 200000 --rooms 1 --latency

Each scenario generates Slack-like staging records (channel by channel, time-ordered
within a channel, as a Slack export is laid out), imports them with the real
converter into a fresh state directory, imports it once more (a retry: nothing new
may appear), and prints messages/s and the process's peak RSS. With --latency it also
times the newest page of channels.history on the largest room, cold (fresh store,
nothing cached) and warm. Scenarios run in separate processes so that each peak RSS is
its own.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ferry.chat.convert.run import run_import  # noqa: E402
from ferry.chat.convert.state import Selection  # noqa: E402
from ferry.chat.reads import VIEW_PUBLIC_ROOMS, Reader, WorkspaceQueries  # noqa: E402
from storage.staging import StagingArea  # noqa: E402
from storage.store import Store  # noqa: E402
from storage.users import UserRepository  # noqa: E402
from storage.workspace import WorkspaceStore  # noqa: E402

WORDS = [
    "deploy",
    "review",
    "lunch",
    "ticket",
    "build",
    "release",
    "meeting",
    "doc",
    "merge",
    "coffee",
    "bug",
    "fix",
    "tomorrow",
    "today",
    "please",
    "thanks",
    "ok",
    "sounds",
    "good",
    "ship",
    "it",
    "later",
    "check",
]
START = 1_600_000_000.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(
    staging: StagingArea, operation: str, messages: int, rooms: int, users: int, seed: int = 7
) -> None:
    rng = random.Random(seed)
    user_ids = [f"U{i:06d}" for i in range(users)]
    with staging.writer(operation) as sink:
        for i, uid in enumerate(user_ids):
            sink.add_user(
                {
                    "importIds": [uid],
                    "username": f"user{i}",
                    "name": f"User {i}",
                    "emails": [f"user{i}@example.com"],
                    "type": "user",
                    "deleted": False,
                }
            )
        for r in range(rooms):
            sink.add_channel(
                {
                    "importIds": [f"C{r:05d}"],
                    "name": f"room-{r}",
                    "t": "c",
                    "users": rng.sample(user_ids, min(50, users)),
                    "u": {"_id": user_ids[0]},
                    "ts": START,
                }
            )
        per_room = messages // rooms
        for r in range(rooms):
            rid = f"C{r:05d}"
            micros = int(START * 1_000_000)  # integers, so no two messages share an id
            parent = None
            for n in range(per_room if r < rooms - 1 else messages - per_room * (rooms - 1)):
                micros += rng.choice((1, 350, 500_000, 3_000_000, 40_000_000))
                author = rng.choice(user_ids)
                text = " ".join(rng.choices(WORDS, k=rng.randint(3, 16)))
                seconds, fraction = divmod(micros, 1_000_000)
                message = {
                    "_id": f"slack-{rid}-{seconds}-{fraction:06d}",
                    "rid": rid,
                    "u": {"_id": author},
                    "msg": text,
                    "ts": micros / 1_000_000,
                }
                roll = rng.random()
                if roll < 0.10:
                    mentioned = rng.choice(user_ids)
                    message["msg"] = f"@{mentioned} {text}"
                    message["mentions"] = [mentioned]
                elif roll < 0.15 and parent:
                    message["tmid"] = parent
                elif roll < 0.20:
                    message["reactions"] = {
                        ":+1:": {"name": ":+1:", "users": rng.sample(user_ids, 2)}
                    }
                elif roll < 0.22:
                    message["_importFile"] = {
                        "downloadUrl": f"https://files.example/{n}",
                        "id": f"F{rid}{n}",
                        "size": 1000,
                        "name": f"{n}.png",
                        "external": False,
                        "source": "slack",
                    }
                if n % 50 == 0:
                    parent = message["_id"]
                sink.add_message(message)


def scenario(messages: int, rooms: int, users: int, latency: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as state:
        store = Store(Path(state))
        staging = StagingArea(store)
        started = time.perf_counter()
        generate(staging, "bench", messages, rooms, users)
        staged = time.perf_counter() - started

        account = UserRepository(store)
        account.insert(
            {
                "_id": "admin",
                "username": "admin",
                "emails": [],
                "roles": ["admin"],
                "active": True,
                "type": "user",
                "importIds": [],
            }
        )
        workspace = WorkspaceStore(store)
        started, cpu = time.perf_counter(), time.process_time()
        report = run_import(
            "bench",
            staging=staging,
            users=account,
            workspace=workspace,
            selection=Selection.everything(),
            importing_user_id="admin",
        )
        imported = time.perf_counter() - started
        cpu = time.process_time() - cpu
        result = {
            "messages": messages,
            "rooms": rooms,
            "users": users,
            "staging_s": round(staged, 2),
            "import_s": round(imported, 2),
            "import_cpu_s": round(cpu, 2),
            "import_msgs_per_s": round(report.messages_imported / imported),
            "errors": report.errors,
            "stored": sum(
                workspace.message_count(r["_id"], visible_only=False)
                for r in workspace.rooms("c")[0]
            ),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            # Other work on the machine shows up in import_s, not in import_cpu_s.
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
        # The same staging again, as after a retry: every message hits an existing id.
        started = time.perf_counter()
        again = run_import(
            "bench",
            staging=staging,
            users=account,
            workspace=workspace,
            selection=Selection.everything(),
            importing_user_id="admin",
        )
        result["reimport_msgs_per_s"] = round(
            again.messages_imported / (time.perf_counter() - started)
        )
        result["stored_after_reimport"] = sum(
            workspace.message_count(r["_id"], visible_only=False) for r in workspace.rooms("c")[0]
        )
        result["peak_rss_mb_after_reimport"] = round(peak_rss_mb(), 1)
        if latency:
            result.update(history_latency(store, rooms))
        store.close()
        return result


def history_latency(store: Store, rooms: int) -> dict:
    # A fresh store: nothing decoded or cached, as after a restart.
    fresh = WorkspaceQueries(WorkspaceStore(store))
    room = fresh._workspace.room_by_name(f"room-{rooms - 1}")
    reader = Reader("bench", frozenset({VIEW_PUBLIC_ROOMS}))
    started = time.perf_counter()
    page = fresh.channel_history(reader, room["_id"], count=20, with_totals=True)
    cold = (time.perf_counter() - started) * 1000
    warm = []
    for _ in range(50):
        started = time.perf_counter()
        fresh.channel_history(reader, room["_id"], count=20)
        warm.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    deep = fresh.channel_history(reader, room["_id"], offset=page["total"] // 2, count=20)
    middle = (time.perf_counter() - started) * 1000
    assert len(page["messages"]) == 20 and len(deep["messages"]) == 20
    return {
        "room_messages_visible": page["total"],
        "newest_page_cold_ms": round(cold, 2),
        "newest_page_warm_median_ms": round(statistics.median(warm), 2),
        "middle_page_ms": round(middle, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int)
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--latency", action="store_true")
    options = parser.parse_args()
    if options.messages:
        print(json.dumps(scenario(options.messages, options.rooms, options.users, options.latency)))
        return
    for args in (
        ["--messages", "100000", "--rooms", "20"],
        ["--messages", "1000000", "--rooms", "50"],
        ["--messages", "200000", "--rooms", "1", "--latency"],
    ):
        done = subprocess.run(
            [sys.executable, __file__, *args], check=True, capture_output=True, text=True
        )
        print(done.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
