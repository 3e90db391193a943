"""Ferry on several processes: the 100 x 5 MiB batch and a mixed read load, with 1 and
2 API instances (`ferry serve --workers 0`) and 1 and 2 `ferry worker`s on one
PostgreSQL database, against one `ferry serve` on TinyDB, in one run.

Everything is on 127.0.0.1: nginx (or Python's http.server) serves the files, a
throwaway PostgreSQL cluster in a temp directory holds the state. Each layout gets a
fresh database and data directory. The batch is started through the first instance and
watched through the last one; the read load spreads its requests over every instance.
Needs PostgreSQL's server binaries (Debian's `postgresql`). Linux only.

    python bench/bench_scale.py [--files 100] [--file-mib 5] [--jobs 16] [--seconds 10]
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_downloads import (  # noqa: E402
    Ferry,
    add_batch_arguments,
    make_file,
    static_server,
    stop_process,
)

from tests.support.postgres import Databases  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# What the read load asks, round-robin: reads every user of the API makes.
READS = (
    "/api/v1/me",
    "/api/v1/downloads",
    "/api/v1/downloads/history?count=20",
    "/api/v1/users.list?count=20",
    "/api/v1/channels.list?count=20",
)


@dataclass(frozen=True)
class Layout:
    name: str
    instances: int
    workers: int  # 0: the one TinyDB server works its own downloads


LAYOUTS = (
    Layout("TinyDB, one ferry serve", 1, 0),
    Layout("PostgreSQL, 1 API + 1 worker", 1, 1),
    Layout("PostgreSQL, 1 API + 2 workers", 1, 2),
    Layout("PostgreSQL, 2 API + 1 worker", 2, 1),
    Layout("PostgreSQL, 2 API + 2 workers", 2, 2),
)


class Worker:
    """`ferry worker` on the layout's database and data directory."""

    def __init__(self, data_dir: Path, log: Path, url: str, jobs: int):
        self.log = log.open("w")
        command = [sys.executable, "-m", "ferry.cli", "worker", "--data-dir", str(data_dir)]
        command += ["--allow-private-networks", "--max-concurrent-downloads", str(jobs)]
        command += ["--max-connections-per-host", str(jobs)]
        env = {**os.environ, "PYTHONPATH": str(REPO), "FERRY_DATABASE_URL": url}
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while "running downloads" not in log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ferry worker did not start: {log.read_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        stop_process(self.process, self.log)


def start_layout(layout: Layout, work: Path, databases: Databases, jobs: int) -> list:
    """The layout's processes, API instances first."""
    data_dir = work / "data"
    if layout.workers == 0:
        return [Ferry(data_dir, jobs, work / "serve.log")]
    url = databases.new()
    started: list = []
    try:
        for index in range(layout.instances):
            env = {"FERRY_DATABASE_URL": url}
            log = work / f"serve-{index}.log"
            started.append(Ferry(data_dir, jobs, log, env=env, extra=("--workers", "0")))
        for index in range(layout.workers):
            started.append(Worker(data_dir, work / f"worker-{index}.log", url, jobs))
    except BaseException:
        for process in reversed(started):
            process.stop()
        raise
    return started


def batch_seconds(api: list[Ferry], base: str, count: int) -> float:
    urls = [f"{base}/batch/f{i:03}.bin" for i in range(count)]
    os.sync()
    began = time.perf_counter()
    ids = set(api[0].start_batch("batch", urls))
    api[-1].wait_all(ids, poll=0.05)
    seconds = time.perf_counter() - began
    api[-1].check_completed(ids)
    stored = list((api[0].files / "batch").iterdir())
    if len(stored) != count:
        raise RuntimeError(f"{len(stored)} of {count} files stored")
    return seconds


def reads_per_second(api: list[Ferry], seconds: float, clients: int) -> tuple[float, int]:
    """Closed-loop reads from `clients` threads for `seconds`, spread over the
    instances; (requests per second, errors)."""
    done = [0] * clients
    errors = [0] * clients
    stop = time.perf_counter() + seconds

    def client(index: int) -> None:
        sessions = []
        for ferry in api:
            session = requests.Session()
            session.headers.update(ferry.session.headers)
            sessions.append((ferry.base, session))
        for (base, session), path in zip(
            itertools.cycle(sessions), itertools.cycle(READS), strict=False
        ):
            if time.perf_counter() > stop:
                return
            if session.get(base + path, timeout=30).ok:
                done[index] += 1
            else:
                errors[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / seconds, sum(errors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_batch_arguments(parser)
    parser.add_argument("--seconds", type=float, default=10, help="length of the read load")
    parser.add_argument("--clients", type=int, default=8, help="threads of the read load")
    args = parser.parse_args(argv)
    databases = Databases()
    if not databases.available:
        print("PostgreSQL's server binaries are not installed (apt-get install postgresql)")
        return 2
    work = Path(tempfile.mkdtemp(prefix="ferry-bench-scale-", dir=args.work_dir))
    work.chmod(0o755)
    results = []
    try:
        root = work / "static"
        (root / "batch").mkdir(parents=True)
        for index in range(args.files):
            make_file(root / "batch" / f"f{index:03}.bin", args.file_mib << 20)
        (work / "nginx-tmp").mkdir()
        with static_server(root, work) as (base, server):
            for number, layout in enumerate(LAYOUTS):
                place = work / f"layout-{number}"
                place.mkdir()
                processes = start_layout(layout, place, databases, args.jobs)
                api = [p for p in processes if isinstance(p, Ferry)]
                try:
                    batch = batch_seconds(api, base, args.files)
                    rate, errors = reads_per_second(api, args.seconds, args.clients)
                finally:
                    for process in reversed(processes):
                        process.stop()
                results.append((layout, batch, rate, errors))
                shutil.rmtree(place, ignore_errors=True)
    finally:
        databases.stop()
        shutil.rmtree(work, ignore_errors=True)
    total_mib = args.files * args.file_mib
    load = os.getloadavg()[0]
    print(f"\nStatic server: {server}; {os.cpu_count()} CPUs; load average {load:.1f} at the end")
    print(
        f"  layout                             {args.files} x {args.file_mib} MiB batch,"
        f" speed vs TinyDB    reads ({args.clients} clients), vs TinyDB"
    )
    single = results[0]
    for layout, batch, rate, errors in results:
        print(
            f"  {layout.name:<34} {batch:6.2f} s {total_mib / batch:5.0f} MiB/s"
            f" {single[1] / batch:5.2f}x   {rate:6.0f} req/s {rate / single[2]:5.2f}x"
            f"  {errors} errors"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
