"""Ferry as a file server against a local peer, in one run: a 1 GiB file and 1,000
small files uploaded (`PUT`) and downloaded (`GET`) through each, then a 2 GiB folder
streamed as a zip with Ferry's peak RSS.

    python bench/bench_files.py [--size-mib 1024] [--files 1000] [--file-kib 64]
                                [--threads 4] [--zip-mib 2048] [--rounds 3]

Everything listens on 127.0.0.1. The peer is nginx with its WebDAV module (`PUT` with
`create_full_put_path`) when `nginx` is on PATH, else a Python http.server that
streams a PUT to disk and sends files with sendfile; the report names the one used.
The big file goes through `curl -T` / `curl -o` for both servers; the small files
through keep-alive `requests` sessions, `--threads` at a time. Ferry fsyncs every
upload before naming it; neither peer does. Linux only (/proc for RSS).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import requests
from bench_downloads import Ferry, _SendfileHandler, make_file, run_tool, static_server, timed

ZIP_RSS_TARGET_MB = 100
# Ferry's peak RSS is sampled this often while the zip streams.
RSS_SAMPLE_SECONDS = 0.02


# --- the peer: a WebDAV nginx, or a Python stand-in -----------------------------------


class _PutSinkHandler(_SendfileHandler):
    """GET with sendfile (from the download benchmark), and PUT streamed to disk."""

    def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
        path = self.root / self.path.lstrip("/").split("?", 1)[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        left = int(self.headers.get("Content-Length", 0))
        with path.open("wb") as target:
            while left:
                block = self.rfile.read(min(left, 1 << 20))
                if not block:
                    break
                left -= target.write(block)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()


# nginx's WebDAV module takes PUTs into the served root, creating folders as needed.
WEBDAV_DIRECTIVES = (
    "client_max_body_size 0; dav_methods PUT DELETE MKCOL; create_full_put_path on;"
    " dav_access user:rw group:r all:r;"
)


def peer_server(root: Path, work: Path):
    """A context yielding (base URL, description) of a server that takes PUTs into
    `root` and serves GETs from it."""
    root.chmod(0o777)  # nginx's workers run as `nobody`
    return static_server(
        root,
        work,
        nginx_directives=WEBDAV_DIRECTIVES,
        handler=_PutSinkHandler,
        label="WebDAV PUT written to disk, GET by sendfile",
    )


# --- one contestant: a base URL, the headers it needs, where its files land -------------


class Contestant:
    def __init__(self, name: str, base: str, headers: dict[str, str], root: Path):
        self.name, self.base, self.headers, self.root = name, base, headers, root

    def curl_headers(self) -> list[str]:
        return [arg for key, value in self.headers.items() for arg in ("-H", f"{key}: {value}")]

    def upload_big(self, source: Path, remote: str) -> None:
        # --fail: a refused upload is an error, not a fast time.
        command = ["curl", "-sS", "--fail", "-T", str(source), *self.curl_headers()]
        run_tool([*command, f"{self.base}/{remote}"])

    def download_big(self, remote: str, target: Path) -> None:
        command = ["curl", "-sS", "--fail", "-o", str(target), *self.curl_headers()]
        run_tool([*command, f"{self.base}/{remote}"])

    def _each(self, names: list[str], threads: int, work) -> None:
        local = threading.local()

        def one(name: str) -> None:
            if not hasattr(local, "session"):
                local.session = requests.Session()
                local.session.headers.update(self.headers)
            work(local.session, name)

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, names))

    def upload_small(self, sources: Path, names: list[str], remote: str, threads: int) -> None:
        def put(session, name):
            data = (sources / name).read_bytes()
            session.put(f"{self.base}/{remote}/{name}", data=data).raise_for_status()

        self._each(names, threads, put)

    def download_small(self, names: list[str], remote: str, threads: int) -> None:
        def get(session, name):
            response = session.get(f"{self.base}/{remote}/{name}")
            response.raise_for_status()
            assert response.content

        self._each(names, threads, get)


def measure_round(
    contestants: list[Contestant], sources: Path, names: list[str], work: Path, args, round_: int
) -> dict[str, float]:
    """Each contestant's four times, uploads first (each into a fresh name)."""
    results: dict[str, float] = {}
    out = work / "out"
    out.mkdir(exist_ok=True)
    for contestant in contestants:
        big, small = f"r{round_}/big.bin", f"r{round_}/small"
        name, c = contestant.name, contestant
        results[f"{name} put big"] = timed(partial(c.upload_big, sources / "big.bin", big))
        results[f"{name} get big"] = timed(partial(c.download_big, big, out / "big.bin"))
        assert (out / "big.bin").stat().st_size == args.size_mib << 20
        (out / "big.bin").unlink()
        small_sources = sources / "small"
        results[f"{name} put small"] = timed(
            partial(c.upload_small, small_sources, names, small, args.threads)
        )
        results[f"{name} get small"] = timed(partial(c.download_small, names, small, args.threads))
        shutil.rmtree(contestant.root / f"r{round_}")
    return results


# --- the zip of a large folder, with Ferry's peak RSS ----------------------------------


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def measure_zip(ferry: Ferry, args) -> dict:
    folder = ferry.files / "zipme"
    folder.mkdir()
    pieces = 8
    for index in range(pieces):
        make_file(folder / f"part-{index}.bin", (args.zip_mib << 20) // pieces)
    for index in range(200):
        (folder / "small" / f"{index // 50}").mkdir(parents=True, exist_ok=True)
        (folder / "small" / f"{index // 50}" / f"s{index}.txt").write_bytes(b"x" * 4096)
    pid = ferry.process.pid
    resting = rss_bytes(pid)
    peak = [resting]
    streaming = threading.Event()
    streaming.set()

    def sample() -> None:
        while streaming.is_set():
            peak[0] = max(peak[0], rss_bytes(pid))
            time.sleep(RSS_SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    received = 0
    os.sync()
    sampler.start()
    began = time.perf_counter()
    with ferry.session.get(f"{ferry.base}/zipme?zip=", stream=True) as response:
        response.raise_for_status()
        for chunk in response.iter_content(1 << 20):
            received += len(chunk)
    seconds = time.perf_counter() - began
    streaming.clear()
    sampler.join()
    shutil.rmtree(folder)
    return {
        "seconds": seconds,
        "bytes": received,
        "resting_mb": resting / 1e6,
        "peak_mb": peak[0] / 1e6,
    }


# --- report ---------------------------------------------------------------------------


def report(rounds: list[dict], zipped: dict, args, peer: str) -> None:
    big_mib = args.size_mib
    small_mib = args.files * args.file_kib / 1024
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    spread = {key: (min(r[key] for r in rounds), max(r[key] for r in rounds)) for key in rounds[0]}
    print(f"\nPeer: {peer}; {os.cpu_count()} CPUs; medians of {args.rounds} rounds")
    print("  measure                                   ferry           peer    ferry/peer")
    for action, label, mib in (
        ("put big", f"upload one {big_mib} MiB file (curl -T)", big_mib),
        ("get big", "download it (curl -o)", big_mib),
        (
            "put small",
            f"upload {args.files} x {args.file_kib} KiB, {args.threads} at once",
            small_mib,
        ),
        ("get small", f"download them, {args.threads} at once", small_mib),
    ):
        ferry, other = median[f"ferry {action}"], median[f"peer {action}"]
        low, high = spread[f"ferry {action}"]
        print(
            f"  {label:<40} {ferry:6.2f} s {mib / ferry:6.0f} MiB/s"
            f"  {other:6.2f} s {mib / other:6.0f} MiB/s   {ferry / other:5.2f}x"
            f"   (ferry {low:.2f}-{high:.2f} s)"
        )
    zip_mib = zipped["bytes"] / (1 << 20)
    verdict = "ok" if zipped["peak_mb"] < ZIP_RSS_TARGET_MB else "MISSED"
    added = zipped["peak_mb"] - zipped["resting_mb"]
    print(
        f"\nZip of a {args.zip_mib} MiB folder (8 large files, 200 small): {zip_mib:.0f} MiB in"
        f" {zipped['seconds']:.2f} s ({zip_mib / zipped['seconds']:.0f} MiB/s)"
    )
    print(
        f"  Ferry RSS: peak {zipped['peak_mb']:.0f} MB while streaming (target <"
        f" {ZIP_RSS_TARGET_MB} MB: {verdict}); {zipped['resting_mb']:.0f} MB before it, so"
        f" the zip itself added {added:.1f} MB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="the big file's size")
    parser.add_argument("--files", type=int, default=1000, help="how many small files")
    parser.add_argument("--file-kib", type=int, default=64, help="each small file's size")
    parser.add_argument("--threads", type=int, default=4, help="small files at a time")
    parser.add_argument("--zip-mib", type=int, default=2048, help="the zipped folder's size")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are compared")
    parser.add_argument("--work-dir", type=Path, help="scratch space (default: a temp dir)")
    args = parser.parse_args(argv)
    if not shutil.which("curl"):
        print("bench_files needs curl", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="ferry-bench-files-", dir=args.work_dir))
    work.chmod(0o755)
    try:
        sources = work / "sources"
        (sources / "small").mkdir(parents=True)
        print(f"Preparing {args.size_mib} MiB + {args.files} x {args.file_kib} KiB in {work}")
        make_file(sources / "big.bin", args.size_mib << 20)
        names = [f"f{index:04}.bin" for index in range(args.files)]
        for name in names:
            (sources / "small" / name).write_bytes(os.urandom(args.file_kib << 10))
        peer_root = work / "peer"
        peer_root.mkdir()
        (work / "nginx-tmp").mkdir()
        (work / "nginx-tmp").chmod(0o777)  # where nginx's workers buffer PUT bodies
        with peer_server(peer_root, work) as (base, peer):
            ferry = Ferry(
                work / "ferry-data",
                jobs=1,
                log=work / "ferry.log",
                env={"FERRY_MAX_UPLOAD_SIZE": f"{max(args.size_mib * 2, 1024)}M"},
            )
            try:
                auth = {"Authorization": ferry.session.headers["Authorization"]}
                contestants = [
                    Contestant("ferry", ferry.base, auth, ferry.files),
                    Contestant("peer", base, {}, peer_root),
                ]
                rounds = [
                    measure_round(contestants, sources, names, work, args, index)
                    for index in range(args.rounds)
                ]
                zipped = measure_zip(ferry, args)
            finally:
                ferry.stop()
        report(rounds, zipped, args, peer)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
