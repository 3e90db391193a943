"""Ferry's downloader against curl, aria2c and the disk, all fetching from one local
static server: the big file against curl, aria2c and `dd oflag=direct` of the same size
(the disk's own write limit); the small files, started by one batch request, against
`aria2c -j`.

The big file is also held against its floor on this machine, measured in the same run:
the slowest of the three things a download with a checksum must do to every byte,
each alone: write it past the page cache (dd), receive it (into 4 MiB reads, dropped)
and hash it (sha256 on one core; one digest cannot be spread over cores).

    python bench/bench_downloads.py [--size-mib 1024] [--files 100] [--file-mib 5] [--jobs 16]

Everything listens on 127.0.0.1. The static server is nginx when `nginx` is on PATH,
else a sendfile-based Python server with Range support (so neither is the bottleneck).
Peers whose binary is missing are skipped with a note. Linux only (/proc for RSS, which
counts the server and its body movers).
The batch's API latency and peak RSS come from as many more batches, run while the
active list is polled; the timed rounds run without that load, as aria2c's do.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ferry.client.live import EVENTS_PATH, parse_events  # noqa: E402
from ferry.kernel.statuses import EventType  # noqa: E402

FINISHED_EVENTS = {
    EventType.DOWNLOAD_COMPLETED,
    EventType.DOWNLOAD_FAILED,
    EventType.DOWNLOAD_CANCELLED,
}
ADMIN_USER, ADMIN_PASSWORD = "bench", "bench-password-1"
TARGETS = {
    "single": 0.6,  # Ferry's wall time / curl's
    "disk": 1.15,  # Ferry's wall time / dd oflag=direct's, the same size
    "floor": 1.15,  # Ferry's wall time / the slowest of disk, network and hash alone
    "batch": 0.5,  # Ferry's wall time / aria2c's
    "rss_mb": 150,
    "p99_ms": 50,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def make_file(path: Path, size: int) -> None:
    block = os.urandom(1 << 20)
    with path.open("wb") as out:
        left = size
        while left:
            left -= out.write(block[: min(left, len(block))])


# --- the static server ------------------------------------------------------------------


class _SendfileHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root: Path

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.root / self.path.lstrip("/").split("?", 1)[0]
        if not path.is_file() or not path.resolve().is_relative_to(self.root):
            self.send_error(404)
            return
        size = path.stat().st_size
        start, end = 0, size - 1
        ranged = self.headers.get("Range", "")
        if ranged.startswith("bytes=") and "," not in ranged:
            first, _, last = ranged[6:].partition("-")
            start = int(first) if first else size - int(last)
            end = min(int(last), size - 1) if first and last else end
        self.send_response(206 if ranged else 200)
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        self.wfile.flush()
        with path.open("rb") as body, contextlib.suppress(OSError):
            self.connection.sendfile(body, start, end - start + 1)

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def static_server(
    root: Path, work: Path, nginx_directives: str = "", handler=None, label="static server"
):
    """Yields (base URL, description). `nginx_directives` go into nginx's server block;
    `handler` (an `_SendfileHandler` subclass) answers where nginx is not installed."""
    port = free_port()
    if shutil.which("nginx"):
        conf = work / "nginx.conf"
        conf.write_text(
            f"""daemon off;
worker_processes 2;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {work}/nginx-tmp;
    proxy_temp_path {work}/nginx-tmp;
    fastcgi_temp_path {work}/nginx-tmp;
    uwsgi_temp_path {work}/nginx-tmp;
    scgi_temp_path {work}/nginx-tmp;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        {nginx_directives}
    }}
}}
"""
        )
        process = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work)])
        try:
            wait_for_port(port)
            yield f"http://127.0.0.1:{port}", f"nginx ({label})"
        finally:
            process.terminate()
            process.wait(10)
        return
    handler = type("Handler", (handler or _SendfileHandler,), {"root": root.resolve()})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", f"Python http.server, nginx not installed ({label})"
    finally:
        server.shutdown()
        server.server_close()


# --- Ferry --------------------------------------------------------------------------------


class Ferry:
    def __init__(
        self,
        data_dir: Path,
        jobs: int,
        log: Path,
        env: dict | None = None,
        history_limit: int = 10000,
        extra: tuple[str, ...] = (),
    ):
        self.port = free_port()
        env = {
            **os.environ,
            **(env or {}),
            "PYTHONPATH": str(REPO),
            "FERRY_ADMIN_USERNAME": ADMIN_USER,
            "FERRY_ADMIN_PASSWORD": ADMIN_PASSWORD,
        }
        command = [sys.executable, "-m", "ferry.cli", "serve", "--port", str(self.port)]
        command += ["--data-dir", str(data_dir), "--allow-download", "--allow-private-networks"]
        # As many from the one static server as run at all, as aria2c -j does.
        command += [
            "--max-concurrent-downloads",
            str(jobs),
            "--max-connections-per-host",
            str(jobs),
            "--download-history-limit",
            str(history_limit),
            *extra,
        ]
        self.log = log.open("w")
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        self.session = requests.Session()
        self.files = data_dir / "files"
        try:
            wait_for_port(self.port)
            login = self.session.post(
                f"{self.base}/api/v1/login", json={"user": ADMIN_USER, "password": ADMIN_PASSWORD}
            )
            login.raise_for_status()
            self.session.headers["Authorization"] = f"Bearer {login.json()['data']['authToken']}"
            # The first authorised request builds the permission table from the spec;
            # pay it before anything is timed.
            self.session.get(f"{self.base}/api/v1/downloads").raise_for_status()
        except BaseException:
            self.stop()  # the caller never gets an object to stop: a server left running
            raise

    def start(self, directory: str, url: str) -> str:
        response = self.session.get(f"{self.base}/{directory}?download={quote(url, safe='')}")
        response.raise_for_status()
        return response.json()["download_id"]

    def start_batch(self, directory: str, urls: list[str]) -> list[str]:
        """Every URL started by one request."""
        items = [{"url": url, "directory": directory} for url in urls]
        response = self.session.post(f"{self.base}/api/v1/downloads", json={"items": items})
        response.raise_for_status()
        answers = response.json()["downloads"]
        refused = [answer for answer in answers if not answer["success"]]
        if refused:
            raise RuntimeError(f"{len(refused)} batch items refused: {refused[0]}")
        return [answer["download_id"] for answer in answers]

    def finished(self) -> dict[str, dict]:
        history = self.session.get(f"{self.base}/?download_history=").json()["history"]
        return {entry["id"]: entry for entry in history}

    def wait_all(self, ids: set[str], poll: float = 0.02) -> None:
        """Until every download in `ids` has left the active list, which it does once its
        final record is stored."""
        while True:
            active = self.session.get(f"{self.base}/api/v1/downloads").json()["downloads"]
            if not ids & {entry["id"] for entry in active}:
                return
            time.sleep(poll)

    @contextlib.contextmanager
    def finishing(self):
        """Yields a function that waits until every download of a set of ids has
        finished, told by the live event stream opened on entering, before anything
        starts: as `ferry download --wait` waits, instead of asking again and again."""
        response = self.session.get(
            f"{self.base}{EVENTS_PATH}",
            headers={"Accept": "text/event-stream"},
            stream=True,
            timeout=60,
        )
        response.raise_for_status()
        events = parse_events(response.iter_lines(decode_unicode=True))
        finished: set[str] = set()

        def wait(ids: set[str]) -> None:
            while not ids <= finished:
                _, kind, data = next(events)
                if kind in FINISHED_EVENTS:
                    finished.add(data["download"]["id"])

        try:
            yield wait
        finally:
            response.close()

    def check_completed(self, ids: set[str]) -> None:
        """The history must say `completed` for each of `ids`; asked after the timing,
        as the peers' files are checked after theirs."""
        done = self.finished()
        failed = [done.get(i, {"id": i, "status": "missing"}) for i in ids]
        failed = [entry for entry in failed if entry["status"] != "completed"]
        if failed:
            raise RuntimeError(f"{len(failed)} Ferry downloads failed: {failed[0]}")

    def rss(self) -> int:
        """The resident memory of the server and its body movers."""
        return sum(resident(pid) for pid in [self.process.pid, *children(self.process.pid)])

    def stop(self) -> None:
        stop_process(self.process, self.log)


def children(pid: int) -> list[int]:
    """The processes `pid` started, from any of its threads."""
    found: list[int] = []
    for listed in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in listed.read_text().split()]
        except OSError:
            continue
    return found


def resident(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def stop_process(process: subprocess.Popen, log) -> None:
    """SIGTERM, as a deploy stops a server; SIGKILL after 30 s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


# --- the measurements ---------------------------------------------------------------------


def timed(run) -> float:
    # Each contestant starts with the disk idle, not still writing out what the one
    # before it may have left in the page cache.
    os.sync()
    began = time.perf_counter()
    run()
    return time.perf_counter() - began


def run_tool(command: list[str]) -> None:
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def aria2c(*args: str) -> list[str]:
    return [
        "aria2c",
        "--quiet=true",
        "--allow-overwrite=true",
        "--auto-file-renaming=false",
        "--file-allocation=none",
        "--check-certificate=false",
        *args,
    ]


def fresh(directory: Path) -> Path:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


def measure_single(base: str, ferry: Ferry, work: Path, size: int) -> dict[str, float | None]:
    """One round: Ferry, curl and aria2c fetch the big file once each."""
    url = f"{base}/big.bin"
    out = fresh(work / "out")
    results: dict[str, float | None] = {}

    started: set[str] = set()

    def ferry_once() -> None:
        with ferry.finishing() as wait:
            started.add(ferry.start("single", url))
            wait(started)

    results["ferry"] = timed(ferry_once)
    ferry.check_completed(started)
    assert (ferry.files / "single" / "big.bin").stat().st_size == size
    shutil.rmtree(ferry.files / "single")
    if shutil.which("curl"):
        results["curl"] = timed(lambda: run_tool(["curl", "-s", "-o", str(out / "c.bin"), url]))
    else:
        results["curl"] = None
    if shutil.which("aria2c"):
        run = aria2c("-x", "4", "-s", "4", "-d", str(out), "-o", "a.bin", url)
        results["aria2c"] = timed(lambda: run_tool(run))
    else:
        results["aria2c"] = None
    fresh(out)
    # The disk's limit: the same bytes (from the page cache) written past the cache.
    source = work / "www" / "big.bin"
    dd = ["dd", f"if={source}", f"of={out / 'd.bin'}", "bs=4M", "oflag=direct", "status=none"]
    results["dd"] = timed(lambda: run_tool(dd)) if shutil.which("dd") else None
    fresh(out)
    # What Ferry does besides writing, each alone: receiving the bytes and hashing them.
    results["network"] = timed(lambda: receive_and_drop(url, size))
    results["sha256"] = timed(lambda: sha256_in_memory(size))
    return results


READ_SIZE = 4 << 20


def receive_and_drop(url: str, size: int) -> None:
    """GET `url` and read the answer into one reused 4 MiB buffer: the loopback's own
    limit (curl into /dev/null reads in small pieces, and takes about twice as long)."""
    parts = urlsplit(url)
    buffer = memoryview(bytearray(READ_SIZE))
    received = 0
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        request = f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"
        sock.sendall(request.encode())
        while read := sock.recv_into(buffer, READ_SIZE, socket.MSG_WAITALL):
            received += read
    if received < size:
        raise RuntimeError(f"the static server sent {received} bytes of {size}")


def sha256_in_memory(size: int) -> str:
    """sha256 over `size` bytes already in memory, 4 MiB per call, on one core."""
    block = os.urandom(READ_SIZE)
    digest = hashlib.sha256()
    whole, rest = divmod(size, READ_SIZE)
    for _ in range(whole):
        digest.update(block)
    digest.update(block[:rest])
    return digest.hexdigest()


def measure_batch(
    base: str, ferry: Ferry, work: Path, count: int, jobs: int, probe: bool = False
) -> dict:
    """One round: Ferry's batch, then aria2c's. With `probe`, Ferry's batch alone while
    the active list is asked for about 100 times a second (latency and RSS); its time is
    not compared with aria2c's, which runs without that load."""
    urls = [f"{base}/batch/f{i:03}.bin" for i in range(count)]
    latencies: list[float] = []
    peak = [ferry.rss()]
    running = threading.Event()
    running.set()

    def sample() -> None:
        probe = requests.Session()
        probe.headers.update(ferry.session.headers)
        while running.is_set():
            began = time.perf_counter()
            probe.get(f"{ferry.base}/api/v1/downloads").raise_for_status()
            latencies.append(time.perf_counter() - began)
            peak[0] = max(peak[0], ferry.rss())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)

    started: set[str] = set()

    def ferry_batch() -> None:
        if probe:
            sampler.start()
        with ferry.finishing() as wait:
            started.update(ferry.start_batch("batch", urls))
            wait(started)

    results: dict = {"ferry": timed(ferry_batch)}
    running.clear()
    ferry.check_completed(started)
    if probe:
        sampler.join()
    assert len(list((ferry.files / "batch").iterdir())) == count
    shutil.rmtree(ferry.files / "batch")
    if shutil.which("aria2c") and not probe:
        listing = work / "urls.txt"
        listing.write_text("\n".join(urls) + "\n")
        out = fresh(work / "out")
        run = aria2c("-j", str(jobs), "-d", str(out), "-i", str(listing))
        results["aria2c"] = timed(lambda: run_tool(run))
        fresh(out)
    else:
        results["aria2c"] = None
    results["latencies"] = latencies
    results["rss_mb"] = peak[0] / 1e6
    return results


def summarize(rounds: list[dict]) -> dict:
    """Each contestant's median time over the rounds (and the spread), pooled latencies."""
    summary: dict = {}
    for name in rounds[0]:
        if name == "latencies":
            continue
        values = [r[name] for r in rounds if r[name] is not None]
        if name == "rss_mb":
            summary[name] = max(values)
            continue
        summary[name] = statistics.median(values) if values else None
        summary[f"{name}_spread"] = (min(values), max(values)) if values else None
    latencies = sorted(x for r in rounds for x in r.get("latencies", []))
    if "latencies" in rounds[0]:
        summary["samples"] = len(latencies)
        summary["p50_ms"] = statistics.median(latencies) * 1000 if latencies else None
        summary["p99_ms"] = (
            latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
            if latencies
            else None
        )
    return summary


# --- report -------------------------------------------------------------------------------


def slowest(single: dict) -> tuple[str, float | None]:
    """Which of the disk, the network and the hash, each alone, takes longest, and how
    long: no download that does all three can be faster."""
    parts = {"the disk": single["dd"], "the network": single["network"], "sha256": single["sha256"]}
    known = {name: seconds for name, seconds in parts.items() if seconds}
    if not known:
        return "n/a", None
    name = max(known, key=known.__getitem__)
    return name, known[name]


def verdict(value: float | None, limit: float) -> str:
    if value is None:
        return "n/a"
    return "ok" if value <= limit else "MISSED"


def report(single: dict, batch: dict, size: int, args, server: str) -> None:
    mib = size / (1 << 20)

    def rate(seconds: float | None, total_mib: float) -> str:
        return f"{total_mib / seconds:8.0f} MiB/s" if seconds else "   skipped"

    def row(name: str, seconds: float | None, total: float, spread=None) -> str:
        shown = f"{seconds:8.2f} s" if seconds else "  skipped"
        spread_text = f"   ({spread[0]:.2f}-{spread[1]:.2f} s)" if spread else ""
        return f"  {name:<34} {shown}   {rate(seconds, total)}{spread_text}"

    print(
        f"\nStatic server: {server}; {os.cpu_count()} CPUs; medians of {args.rounds} rounds;"
        " each run starts after a sync"
    )
    print(f"\nOne file of {mib:.0f} MiB")
    print(row("ferry (request -> completed)", single["ferry"], mib, single["ferry_spread"]))
    print(row("curl -o", single["curl"], mib, single["curl_spread"]))
    print(row("aria2c -x4 -s4", single["aria2c"], mib, single["aria2c_spread"]))
    print(row("dd oflag=direct (the disk)", single["dd"], mib, single["dd_spread"]))
    print(row("received, dropped (the network)", single["network"], mib, single["network_spread"]))
    print(row("sha256 in memory (one core)", single["sha256"], mib, single["sha256_spread"]))
    floor_name, floor = slowest(single)
    print(row(f"the floor: the slowest, {floor_name}", floor, mib))
    batch_mib = args.files * args.file_mib
    print(f"\n{args.files} files of {args.file_mib} MiB, {args.jobs} at a time")
    print(
        row(
            f"ferry, one batch request, {args.jobs} at once",
            batch["ferry"],
            batch_mib,
            batch["ferry_spread"],
        )
    )
    print(row(f"aria2c -j {args.jobs}", batch["aria2c"], batch_mib, batch["aria2c_spread"]))

    single_ratio = single["ferry"] / single["curl"] if single["curl"] else None
    disk_ratio = single["ferry"] / single["dd"] if single["dd"] else None
    floor_ratio = single["ferry"] / floor if floor else None
    batch_ratio = batch["ferry"] / batch["aria2c"] if batch["aria2c"] else None
    print("\n  measure                               value   target   verdict")
    lines = [
        ("single: ferry / curl", single_ratio, TARGETS["single"], "x"),
        ("single: ferry / dd oflag=direct", disk_ratio, TARGETS["disk"], "x"),
        ("single: ferry / its floor", floor_ratio, TARGETS["floor"], "x"),
        ("batch: ferry / aria2c", batch_ratio, TARGETS["batch"], "x"),
        ("ferry peak RSS during batch (MB)", batch["rss_mb"], TARGETS["rss_mb"], ""),
        ("GET /api/v1/downloads p50 (ms)", batch["p50_ms"], None, ""),
        ("GET /api/v1/downloads p99 (ms)", batch["p99_ms"], TARGETS["p99_ms"], ""),
    ]
    for name, value, limit, unit in lines:
        shown = f"{value:8.2f}{unit}" if value is not None else "     n/a"
        target = f"<= {limit:g}{unit}" if limit is not None else ""
        check = verdict(value, limit) if limit is not None else ""
        print(f"  {name:<34} {shown:>10} {target:>9}   {check}")
    print(f"  ({batch['samples']} latency samples while {args.rounds} more batches ran, not timed)")
    if single["dd"] and single["sha256"] and single["sha256"] > TARGETS["disk"] * single["dd"]:
        print(
            f"  note: sha256 alone took {single['sha256'] / single['dd']:.2f}x dd's time in this"
            " run: no download that hashes its bytes can meet the disk target here"
        )
    for peer, seconds in (("curl", single["curl"]), ("aria2c", batch["aria2c"])):
        if seconds is None:
            print(f"  note: {peer} is not installed; its comparison was skipped")


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """The batch's shape and the scratch space, as every batch benchmark takes them."""
    parser.add_argument("--files", type=int, default=100, help="files in the batch")
    parser.add_argument("--file-mib", type=int, default=5, help="size of each batch file")
    parser.add_argument("--jobs", type=int, default=16, help="downloads at a time per process")
    parser.add_argument("--work-dir", type=Path, help="scratch space (default: a temp dir)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="the single file's size")
    add_batch_arguments(parser)
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are compared")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="ferry-bench-", dir=args.work_dir))
    # nginx started as root serves as `nobody`, which must be able to read the files.
    work.chmod(0o755)
    try:
        source = work / "www"
        (source / "batch").mkdir(parents=True)
        (work / "nginx-tmp").mkdir()
        size = args.size_mib << 20
        print(f"Preparing {args.size_mib} MiB + {args.files} x {args.file_mib} MiB in {work}")
        make_file(source / "big.bin", size)
        for i in range(args.files):
            make_file(source / "batch" / f"f{i:03}.bin", args.file_mib << 20)
        with static_server(source, work) as (base, server):
            ferry = Ferry(work / "ferry-data", args.jobs, work / "ferry.log")
            try:
                # Read once so that every contestant finds the source in the page cache.
                requests.get(f"{base}/big.bin").raise_for_status()
                single = summarize(
                    [measure_single(base, ferry, work, size) for _ in range(args.rounds)]
                )
                batch = summarize(
                    [
                        measure_batch(base, ferry, work, args.files, args.jobs)
                        for _ in range(args.rounds)
                    ]
                )
                loaded = summarize(
                    [
                        measure_batch(base, ferry, work, args.files, args.jobs, probe=True)
                        for _ in range(args.rounds)
                    ]
                )
                batch.update(
                    {key: loaded[key] for key in ("rss_mb", "samples", "p50_ms", "p99_ms")}
                )
            finally:
                ferry.stop()
        report(single, batch, size, args, server)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
