"""Benchmark of the import API: prepare and import of generated CSV and Slack exports.

    PYTHONPATH=. python bench/bench_import.py                  # CSV and Slack, 100,000 messages
    PYTHONPATH=. python bench/bench_import.py --only slack --messages 20000
    PYTHONPATH=. python bench/bench_import.py --million        # adds 1,000,000-message runs
    PYTHONPATH=. python bench/bench_import.py --big-room       # adds 200,000 messages in one room

Each scenario writes its export with ferry.chat.generate into a temporary directory,
then, in a fresh process (so that each peak RSS is the scenario's own), opens
Services over a fresh data directory, creates an admin and goes through the import
API as a client would: upload (a binary stream, or downloadPublicImportFile from a
local import folder with --folder), wait for importer_user_selection (the prepare
phase), startImport of every user and channel, wait for importer_done (the import
phase). It prints messages/s of both phases, the process's peak RSS after each, and
the latency of the newest page of channels.history (count=50) on the biggest public
room, cold (the first read of a fresh Services over the imported data, as after a
restart) and warm (median of repeats).

Rates count staged messages (a Slack file becomes a message of its own, so a Slack
export stages ~5% more messages than it holds). Wall-clock rates suffer from anything
else running on the machine; the CPU seconds of each phase (all threads of the
process), the rates per CPU second and the 1-minute load average are printed beside
them to tell. The misses column compares wall-clock rates with the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ferry.chat.generate import write_csv_export, write_slack_export  # noqa: E402
from ferry.chat.reads import VIEW_PUBLIC_ROOMS, Reader  # noqa: E402
from ferry.kernel.config import Config  # noqa: E402
from ferry.kernel.statuses import FINAL_IMPORT_STEPS, ImportStep  # noqa: E402
from ferry.services import Services  # noqa: E402

CSV_CHANNELS = 20
SLACK_CHANNELS = 200
USERS = 200
BIG_ROOM = 200_000
POLL_SECONDS = 0.02
PHASE_TIMEOUT = 3600
HISTORY_PAGE = 50
WARM_READS = 20

# Targets on a 2-core machine; a figure that misses one is flagged in the table.
PREPARE_TARGET = {"csv": 50_000, "slack": 30_000}
IMPORT_TARGET = 20_000
HISTORY_TARGET_MS = 100


def rss_target_mb(messages: int) -> int:
    return 300 if messages <= 100_000 else 500


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------
# One scenario, in its own process


def generate(kind: str, path: Path, messages: int, channels: int) -> dict:
    writer = write_csv_export if kind == "csv" else write_slack_export
    started = time.perf_counter()
    summary = writer(path, messages=messages, channels=channels, users=USERS)
    return {
        "generate_s": round(time.perf_counter() - started, 2),
        "zip_mb": round(path.stat().st_size / 2**20, 1),
        "generated_messages": summary.messages,
    }


def wait_for(services: Services, op_id: str, wanted: str) -> dict:
    deadline = time.monotonic() + PHASE_TIMEOUT
    while time.monotonic() < deadline:
        operation = services.imports.operations.get(op_id)
        if operation["status"] == wanted:
            return operation
        if operation["status"] in FINAL_IMPORT_STEPS:
            raise RuntimeError(f"operation ended {operation['status']}: {operation.get('error')}")
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"operation {op_id} never reached {wanted}")


def run_scenario(kind: str, export: Path, via_folder: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="ferry-bench-data-") as data:
        config = Config(data_dir=Path(data), import_folder=export.parent)
        services = Services.open(config)
        services.start()
        try:
            result = _import_through_api(services, kind, export, via_folder)
        finally:
            services.close()
        # History from a fresh Services over the same data: nothing cached, as after a restart.
        services = Services.open(config)
        try:
            result.update(history_latency(services))
        finally:
            services.close()
        return result


def _import_through_api(services: Services, kind: str, export: Path, via_folder: bool) -> dict:
    admin = services.accounts.create_user(
        "bench-admin", email=None, name="Bench", password=None, roles=["admin"]
    )
    started = time.perf_counter()
    if via_folder:
        operation = services.imports.download_public(admin["_id"], export.name, kind)
    else:
        with open(export, "rb") as stream:
            operation = services.imports.upload(
                admin["_id"], export.name, "application/zip", kind, stream
            )
    uploaded, cpu = time.perf_counter(), time.process_time()
    upload_s = uploaded - started
    prepared = wait_for(services, operation["_id"], ImportStep.USER_SELECTION)
    prepare_s = time.perf_counter() - uploaded
    prepare_cpu = time.process_time() - cpu
    prepare_rss = peak_rss_mb()
    staged = prepared["count"]["messages"]

    started, cpu = time.perf_counter(), time.process_time()
    everything = {"users": {"all": True}, "channels": {"all": True}}
    services.imports.start_import(admin["_id"], everything)
    done = wait_for(services, operation["_id"], ImportStep.DONE)
    import_s = time.perf_counter() - started
    import_cpu = time.process_time() - cpu
    report = done.get("report") or {}
    imported = report.get("messages_imported", 0)

    result = {
        "upload_s": round(upload_s, 2),
        "staged_messages": staged,
        "imported_messages": imported,
        "import_errors": report.get("errors"),
        "prepare_s": round(prepare_s, 2),
        "prepare_cpu_s": round(prepare_cpu, 2),
        "prepare_msgs_per_s": round(staged / prepare_s),
        "prepare_msgs_per_cpu_s": round(staged / max(prepare_cpu, 1e-6)),
        "prepare_peak_rss_mb": round(prepare_rss, 1),
        "import_s": round(import_s, 2),
        "import_cpu_s": round(import_cpu, 2),
        "import_msgs_per_s": round(imported / import_s),
        "import_msgs_per_cpu_s": round(imported / max(import_cpu, 1e-6)),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    return result


def history_latency(services: Services) -> dict:
    rooms = services.workspace.channels_list(count=100_000)["channels"]
    biggest = max(rooms, key=lambda room: room.get("msgs", 0))
    started = time.perf_counter()
    reader = Reader("bench", frozenset({VIEW_PUBLIC_ROOMS}))
    page = services.workspace.channel_history(reader, biggest["_id"], count=HISTORY_PAGE)
    cold = (time.perf_counter() - started) * 1000
    warm = []
    for _ in range(WARM_READS):
        started = time.perf_counter()
        services.workspace.channel_history(reader, biggest["_id"], count=HISTORY_PAGE)
        warm.append((time.perf_counter() - started) * 1000)
    assert page["messages"], "the biggest room shows no message"
    return {
        "biggest_room_msgs": biggest.get("msgs", 0),
        "history_cold_ms": round(cold, 2),
        "history_warm_ms": round(statistics.median(warm), 2),
    }


# ---------------------------------------------------------------------------
# Scenarios and the table


def scenarios(options: argparse.Namespace) -> list[tuple[str, int, int]]:
    """`(kind, messages, channels)` to run."""
    kinds = [options.only] if options.only else ["csv", "slack"]
    channels = {"csv": CSV_CHANNELS, "slack": SLACK_CHANNELS}
    sizes = [options.messages] + ([1_000_000] if options.million else [])
    chosen = [(kind, size, channels[kind]) for size in sizes for kind in kinds]
    if options.big_room:
        # One channel gets all but the generator's DM share (DIRECT_SHARE, 10%).
        total = -(-BIG_ROOM * 100 // 90)
        chosen += [(kind, total, 1) for kind in kinds]
    return chosen


def run_in_subprocess(kind: str, messages: int, channels: int, via_folder: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="ferry-bench-export-") as folder:
        export = Path(folder) / f"{kind}-{messages}.zip"
        result = {"kind": kind, "messages": messages, "channels": channels}
        result.update(generate(kind, export, messages, channels))
        command = [sys.executable, __file__, "--run", kind, "--export", str(export)]
        if via_folder:
            command.append("--folder")
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            result["failed"] = done.stderr.strip().splitlines()[-1:] or ["no output"]
            return result
        result.update(json.loads(done.stdout.strip().splitlines()[-1]))
        return result


COLUMNS = [
    ("kind", "kind", "{}"),
    ("messages", "messages", "{:,}"),
    ("channels", "channels", "{}"),
    ("zip MB", "zip_mb", "{}"),
    ("staged", "staged_messages", "{:,}"),
    ("prepare s", "prepare_s", "{}"),
    ("prepare cpu s", "prepare_cpu_s", "{}"),
    ("prepare msg/s", "prepare_msgs_per_s", "{:,}"),
    ("msg/cpu-s", "prepare_msgs_per_cpu_s", "{:,}"),
    ("import s", "import_s", "{}"),
    ("import cpu s", "import_cpu_s", "{}"),
    ("import msg/s", "import_msgs_per_s", "{:,}"),
    ("msg/cpu-s", "import_msgs_per_cpu_s", "{:,}"),
    ("peak RSS MB", "peak_rss_mb", "{}"),
    ("room msgs", "biggest_room_msgs", "{:,}"),
    ("history cold ms", "history_cold_ms", "{}"),
    ("history warm ms", "history_warm_ms", "{}"),
    ("load", "load_average_1m", "{}"),
]


def misses(result: dict) -> list[str]:
    if "failed" in result:
        return ["failed: " + " ".join(result["failed"])]
    found = []
    if result["prepare_msgs_per_s"] < PREPARE_TARGET[result["kind"]]:
        found.append(f"prepare < {PREPARE_TARGET[result['kind']]:,} msg/s")
    if result["import_msgs_per_s"] < IMPORT_TARGET:
        found.append(f"import < {IMPORT_TARGET:,} msg/s")
    if result["peak_rss_mb"] >= rss_target_mb(result["messages"]):
        found.append(f"peak RSS >= {rss_target_mb(result['messages'])} MB")
    if result["biggest_room_msgs"] >= BIG_ROOM and result["history_cold_ms"] >= HISTORY_TARGET_MS:
        found.append(f"history >= {HISTORY_TARGET_MS} ms")
    if result["imported_messages"] != result["staged_messages"] or result["import_errors"]:
        found.append("not every staged message was imported")
    return found


def table(results: list[dict]) -> str:
    header = [title for title, _, _ in COLUMNS] + ["misses"]
    rows = []
    for result in results:
        cells = [
            fmt.format(result[key]) if result.get(key) is not None else "-"
            for _, key, fmt in COLUMNS
        ]
        rows.append(cells + ["; ".join(misses(result)) or "-"])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

    rule = "-+-".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *map(line, rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000, help="default 100,000")
    parser.add_argument("--only", choices=["csv", "slack"])
    parser.add_argument("--million", action="store_true", help="add 1,000,000-message runs")
    parser.add_argument(
        "--big-room", action="store_true", help=f"add {BIG_ROOM:,} messages in one channel"
    )
    parser.add_argument(
        "--folder", action="store_true", help="downloadPublicImportFile, not upload"
    )
    parser.add_argument("--json", action="store_true", help="also print each result as JSON")
    parser.add_argument("--run", choices=["csv", "slack"], help=argparse.SUPPRESS)
    parser.add_argument("--export", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.run:
        print(json.dumps(run_scenario(options.run, options.export, options.folder)))
        return
    results = []
    for kind, messages, channels in scenarios(options):
        print(f"running {kind} {messages:,} messages in {channels} channels ...", flush=True)
        result = run_in_subprocess(kind, messages, channels, options.folder)
        results.append(result)
        if options.json:
            print(json.dumps(result), flush=True)
    print()
    print(table(results))


if __name__ == "__main__":
    main()
