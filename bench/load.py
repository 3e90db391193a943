"""Mixed API load on a live `ferry serve` while downloads and a big CSV import run.

    python bench/load.py [--seconds 60] [--runs 2] [--clients 2] [--threads 4]
                         [--downloads 50] [--messages 100000] [--history-limit 10000]
                         [--memory-snapshots DIR [--trace-frames N]]

Starts one `ferry serve` on 127.0.0.1 (--allow-download --allow-private-networks) and a
local static server (nginx if installed, else a Python sendfile server), then runs the
same scenario `--runs` times in a row against that one server. Each run: client
processes send closed-loop requests (each waits for its answer, then sends the next)
over a mix of read endpoints for `--seconds`, while `--downloads` downloads are started
spread over the run and one CSV export of `--messages` messages is uploaded and
imported. It prints requests/s, p50/p99 latency per endpoint and overall, errors
(anything but the expected status, or no answer), and the server's RSS: its peak during
each run and its level after each run, so that growth across runs shows. With
--memory-snapshots it also prints, before the first run and after each, how the
server's memory divides between glibc's malloc (in use, free but kept) and Python's
allocator, and which object types grew (ferry/memdiag.py). Everything
stops by itself; nothing listens beyond 127.0.0.1. Linux only (/proc for RSS).
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_downloads import Ferry, make_file, static_server  # noqa: E402

from ferry.chat.generate import write_csv_export  # noqa: E402
from ferry.ops import memdiag  # noqa: E402

DOWNLOAD_DIR = "load"
# Every tenth download is big enough to be fetched in Range segments.
SMALL_MIB, BIG_MIB = 8, 96
IMPORT_CHANNELS = 20
RSS_SAMPLE_INTERVAL = 0.1
ENDPOINTS = (
    "me",
    "users.list",
    "root listing",
    "download dir listing",
    "downloads (global)",
    "downloads (dir)",
    "download_history",
    "getImportProgress",
    "channels.list",
    "channels.history",
)


# --- the clients (separate processes, so their own CPU work does not share one GIL) ---


def _client_path(name: str, rooms: list[str], rng: random.Random) -> str | None:
    if name == "channels.history":
        if not rooms:
            return None
        return f"/api/v1/channels.history?roomName={quote(rng.choice(rooms))}&count=50"
    return {
        "me": "/api/v1/me",
        "users.list": "/api/v1/users.list?count=50",
        "root listing": "/",
        "download dir listing": f"/{DOWNLOAD_DIR}",
        "downloads (global)": "/api/v1/downloads",
        "downloads (dir)": f"/{DOWNLOAD_DIR}?downloads=",
        "download_history": "/?download_history=",
        "getImportProgress": "/api/v1/getImportProgress",
        "channels.list": "/api/v1/channels.list?count=100",
    }[name]


def _client_thread(base: str, token: str, until: float, seed: int, out: dict) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    rng = random.Random(seed)
    rooms: list[str] = []
    latencies: dict[str, list[float]] = {name: [] for name in ENDPOINTS}
    errors: dict[str, int] = {}
    turn = seed
    while time.monotonic() < until:
        name = ENDPOINTS[turn % len(ENDPOINTS)]
        turn += 1
        path = _client_path(name, rooms, rng)
        if path is None:
            continue
        began = time.perf_counter()
        try:
            response = session.get(base + path, timeout=30)
            status = response.status_code
            if status == 200 and name == "channels.list":
                rooms = [room["name"] for room in response.json().get("channels", [])]
            elif status == 404 and name == "download dir listing":
                status = 200  # before the first download creates it
        except requests.RequestException as exc:
            status = type(exc).__name__
        if status == 200:
            latencies[name].append(time.perf_counter() - began)
        else:
            key = f"{name}: {status}"
            errors[key] = errors.get(key, 0) + 1
    out["latencies"] = latencies
    out["errors"] = errors


def client_process(base: str, token: str, until: float, threads: int, seed: int) -> dict:
    results = [{} for _ in range(threads)]
    workers = [
        threading.Thread(target=_client_thread, args=(base, token, until, seed * 97 + i, out))
        for i, out in enumerate(results)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    merged: dict = {"latencies": {name: [] for name in ENDPOINTS}, "errors": {}}
    for out in results:
        for name, values in out["latencies"].items():
            merged["latencies"][name].extend(values)
        for key, count in out["errors"].items():
            merged["errors"][key] = merged["errors"].get(key, 0) + count
    return merged


# --- the background work ------------------------------------------------------------------


def _rss_kb(pid: int, field_name: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{field_name}:"):
                return int(line.split()[1])
    return 0


class RssSampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_kb = pid, _rss_kb(pid)
        self.running = threading.Event()
        self.running.set()

    def run(self) -> None:
        while self.running.is_set():
            self.peak_kb = max(self.peak_kb, _rss_kb(self.pid))
            time.sleep(RSS_SAMPLE_INTERVAL)

    def stop(self) -> int:
        self.running.clear()
        self.join()
        return self.peak_kb


def start_downloads(ferry: Ferry, urls: list[str], spread: float, ids: list[str]) -> None:
    """Start the downloads evenly over `spread` seconds, so that some always run."""
    began = time.monotonic()
    for index, url in enumerate(urls):
        time.sleep(max(0.0, began + spread * index / len(urls) - time.monotonic()))
        ids.append(ferry.start(DOWNLOAD_DIR, url))


@dataclass
class ImportRun:
    seconds: float | None = None
    state: str = "not started"
    notes: list[str] = field(default_factory=list)


def run_import(ferry: Ferry, export: Path, until: float, result: ImportRun) -> None:
    """Upload, wait for the selection, import everything, wait for the end."""
    session = ferry.session
    began = time.monotonic()
    with export.open("rb") as handle:
        answer = session.post(
            f"{ferry.base}/api/v1/uploadImportFile",
            files={"file": (export.name, handle, "application/zip")},
            data={"importerKey": "csv"},
        )
    if answer.json() != {"success": True}:
        result.state = f"upload refused: {answer.text[:200]}"
        return
    result.state = "preparing"
    while session.get(f"{ferry.base}/api/v1/getImportFileData").json().get("waiting"):
        if time.monotonic() > until:
            return
        time.sleep(0.2)
    everything = {"input": {"users": {"all": True}, "channels": {"all": True}}}
    answer = session.post(f"{ferry.base}/api/v1/startImport", json=everything)
    if answer.json() != {"success": True}:
        result.state = f"start refused: {answer.text[:200]}"
        return
    result.state = "importing"
    while time.monotonic() < until:
        status = session.get(f"{ferry.base}/api/v1/import.status").json()
        if status["state"] in ("done", "error"):
            result.state = status["state"]
            result.seconds = time.monotonic() - began
            return
        time.sleep(0.2)


# --- one run ------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def one_run(ferry: Ferry, base: str, args, export: Path, number: int) -> dict:
    shutil.rmtree(ferry.files / DOWNLOAD_DIR, ignore_errors=True)
    urls = [
        f"{base}/dl/{'big' if i % 10 == 9 else 'small'}{i:02}.bin" for i in range(args.downloads)
    ]
    sampler = RssSampler(ferry.process.pid)
    sampler.start()
    token = ferry.session.headers["Authorization"].split()[1]
    began = time.monotonic()
    until = began + args.seconds
    imported = ImportRun()
    # Downloads and the import stop by the end of the run plus a grace period.
    importer = threading.Thread(
        target=run_import, args=(ferry, export, until + args.seconds, imported), daemon=True
    )
    ids: list[str] = []
    starter = threading.Thread(
        target=start_downloads, args=(ferry, urls, args.seconds * 0.6, ids), daemon=True
    )
    importer.start()
    starter.start()
    with multiprocessing.get_context("spawn").Pool(args.clients) as pool:
        jobs = [
            pool.apply_async(
                client_process, (ferry.base, token, until, args.threads, number * 1000 + c)
            )
            for c in range(args.clients)
        ]
        outcomes = [job.get(timeout=args.seconds + 120) for job in jobs]
    elapsed = time.monotonic() - began
    starter.join(args.seconds)
    downloads_done = wait_downloads(ferry, set(ids), deadline=time.monotonic() + args.seconds)
    importer.join(args.seconds)
    peak_kb = sampler.stop()
    time.sleep(2)  # let the server settle before its resting level is read
    latencies = {name: [] for name in ENDPOINTS}
    errors: dict[str, int] = {}
    for outcome in outcomes:
        for name, values in outcome["latencies"].items():
            latencies[name].extend(values)
        for key, count in outcome["errors"].items():
            errors[key] = errors.get(key, 0) + count
    return {
        "elapsed": elapsed,
        "latencies": latencies,
        "errors": errors,
        "downloads": downloads_done,
        "started": len(ids),
        "import": imported,
        "peak_mb": peak_kb / 1024,
        "after_mb": _rss_kb(ferry.process.pid) / 1024,
    }


def wait_downloads(ferry: Ferry, ids: set[str], deadline: float) -> dict[str, int]:
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        done = ferry.finished()
        if ids <= done.keys():
            break
        time.sleep(0.2)
    for download_id in ids:
        status = done.get(download_id, {}).get("status", "unfinished")
        counts[status] = counts.get(status, 0) + 1
    return counts


def snapshot(ferry: Ferry, directory: Path, number: int) -> None:
    """Ask the server for its `number`th memory snapshot, wait for it, print what grew."""
    done = directory / f"snapshot-{number}.done"
    ferry.process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 300
    while not done.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no memory snapshot {number} after 300 s")
        time.sleep(0.5)
    stem = directory / f"snapshot-{number}"
    when = f"after run {number}" if number else "before the runs"
    print(f"Memory {when}: {memdiag.summary(stem.with_suffix('.json'))}")
    if number == 0:
        return
    older = directory / f"snapshot-{number - 1}"
    for line in memdiag.compare_types(older.with_suffix(".json"), stem.with_suffix(".json")):
        print("  objects " + line)
    if stem.with_suffix(".tracemalloc").exists():
        print("  Python allocations that grew:")
        traces = (older.with_suffix(".tracemalloc"), stem.with_suffix(".tracemalloc"))
        for line in memdiag.compare(*traces):
            print("  " + line)


# --- report -------------------------------------------------------------------------------


def ms(value: float | None) -> str:
    return f"{value * 1000:7.1f}" if value is not None else "    n/a"


def report(runs: list[dict], args, server: str) -> None:
    print(f"\nStatic server: {server}; {multiprocessing.cpu_count()} CPUs; ")
    print(f"{args.clients} client processes x {args.threads} threads, closed loop")
    for number, run in enumerate(runs, 1):
        total = sum(len(v) for v in run["latencies"].values())
        everything = [x for v in run["latencies"].values() for x in v]
        print(f"\nRun {number}: {total} answers in {run['elapsed']:.1f} s")
        print(f"  {'endpoint':<22} {'count':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for name in ENDPOINTS:
            values = run["latencies"][name]
            top = max(values) if values else None
            p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
            print(f"  {name:<22} {len(values):>7} {ms(p50):>8} {ms(p99):>8} {ms(top):>8}")
        p50, p99 = percentile(everything, 0.5), percentile(everything, 0.99)
        print(f"  {'all':<22} {total:>7} {ms(p50):>8} {ms(p99):>8}")
        for key, count in sorted(run["errors"].items()):
            print(f"  error: {key} x {count}")
    print("\n  run   req/s   p50 ms   p99 ms  errors  downloads        import     peak RSS  after")
    for number, run in enumerate(runs, 1):
        everything = [x for v in run["latencies"].values() for x in v]
        errors = sum(run["errors"].values())
        done = run["downloads"].get("completed", 0)
        downloads = f"{done}/{run['started']} ok"
        imported = run["import"]
        took = f"{imported.state} {imported.seconds:.0f} s" if imported.seconds else imported.state
        rate = len(everything) / run["elapsed"]
        print(
            f"  {number:>3} {rate:7.0f} {ms(percentile(everything, 0.5))}"
            f"  {ms(percentile(everything, 0.99))} {errors:>7}  {downloads:<12} {took:>12}"
            f" {run['peak_mb']:8.0f} MB {run['after_mb']:4.0f} MB"
        )
    if len(runs) > 1:
        growth = runs[-1]["after_mb"] - runs[0]["after_mb"]
        peak_growth = runs[-1]["peak_mb"] - runs[0]["peak_mb"]
        print(
            f"\n  RSS after the last run vs after the first: {growth:+.0f} MB;"
            f" peak {peak_growth:+.0f} MB"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="length of each run")
    parser.add_argument("--runs", type=int, default=2, help="runs in a row on one server")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per client process")
    parser.add_argument("--downloads", type=int, default=50, help="downloads per run")
    parser.add_argument("--messages", type=int, default=100_000, help="messages in the import")
    parser.add_argument("--jobs", type=int, default=16, help="--max-concurrent-downloads")
    parser.add_argument(
        "--history-limit",
        type=int,
        default=10000,
        help="--download-history-limit; at most --downloads keeps the history's size flat",
    )
    parser.add_argument("--work-dir", type=Path, help="scratch space (default: a temp dir)")
    parser.add_argument(
        "--memory-snapshots",
        type=Path,
        help="write the server's memory figures to this directory before the first run "
        "and after each run, and print what grew; see ferry/memdiag.py",
    )
    parser.add_argument(
        "--trace-frames",
        type=int,
        default=0,
        help="with --memory-snapshots: also trace Python allocations with this many frames "
        "(several times slower, so imports may not finish within a run)",
    )
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="ferry-load-", dir=args.work_dir))
    work.chmod(0o755)  # nginx started as root reads as `nobody`
    try:
        source = work / "www"
        (source / "dl").mkdir(parents=True)
        (work / "nginx-tmp").mkdir()
        print(f"Preparing {args.downloads} files and a {args.messages}-message export in {work}")
        for i in range(args.downloads):
            mib = BIG_MIB if i % 10 == 9 else SMALL_MIB
            make_file(source / "dl" / f"{'big' if i % 10 == 9 else 'small'}{i:02}.bin", mib << 20)
        export = work / "export.zip"
        write_csv_export(export, messages=args.messages, channels=IMPORT_CHANNELS)
        runs = []
        with static_server(source, work) as (base, server):
            env = {}
            if args.memory_snapshots:
                args.memory_snapshots.mkdir(parents=True, exist_ok=True)
                for stale in args.memory_snapshots.glob("snapshot-*"):
                    stale.unlink()  # an old `.done` would pass for a new snapshot
                env[memdiag.ENV] = str(args.memory_snapshots.resolve())
                env[memdiag.TRACE_ENV] = str(args.trace_frames)
            ferry = Ferry(
                work / "ferry-data",
                args.jobs,
                work / "ferry.log",
                env=env,
                history_limit=args.history_limit,
            )
            try:
                if args.memory_snapshots:
                    snapshot(ferry, args.memory_snapshots, 0)
                for number in range(1, args.runs + 1):
                    print(f"Run {number} of {args.runs}: {args.seconds:g} s", flush=True)
                    runs.append(one_run(ferry, base, args, export, number))
                    if args.memory_snapshots:
                        snapshot(ferry, args.memory_snapshots, number)
            finally:
                ferry.stop()
        report(runs, args, server)
        errors = sum(sum(run["errors"].values()) for run in runs)
        return 1 if errors else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
