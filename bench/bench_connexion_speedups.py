"""What handlers/connexion_speedups.py saves per request, in-process.

Each variant runs in its own process (the patch changes Connexion's classes), several
times alternating; the fastest round of each is compared:

    .venv/bin/python bench/bench_connexion_speedups.py --rounds 3
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PATHS = ("/api/v1/downloads", "/api/v1/me")
PASSWORD = "bench-password-1"


def measure(patched: bool, requests: int) -> dict[str, float]:
    """CPU seconds per request for each path (client and app share the process, and CPU
    time is what other work on the machine disturbs least), the least of five batches."""
    from ferry.kernel.config import Config
    from handlers import app as app_module

    if not patched:
        app_module.decorate_handlers_once = lambda: None
    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as data:
        app = app_module.create_app(Config(data_dir=Path(data), password_cost=2**4))
        app.services.accounts.ensure_admin("admin", PASSWORD)
        with app.test_client() as client:
            login = client.post("/api/v1/login", json={"user": "admin", "password": PASSWORD})
            data_ = login.json()["data"]
            headers = {"X-User-Id": data_["userId"], "X-Auth-Token": data_["authToken"]}
            result = {}
            for path in PATHS:
                for _ in range(200):
                    client.get(path, headers=headers)
                batches = []
                for _ in range(5):
                    started = time.process_time()
                    for _ in range(requests):
                        client.get(path, headers=headers)
                    batches.append((time.process_time() - started) / requests)
                result[path] = min(batches)
            return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--variant", choices=("patched", "plain"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        for path, seconds in measure(args.variant == "patched", args.requests).items():
            print(f"{path}\t{seconds * 1000:.3f}")
        return
    best: dict[tuple[str, str], float] = {}
    for _ in range(args.rounds):
        for variant in ("patched", "plain"):
            output = subprocess.run(
                [sys.executable, __file__, "--variant", variant, "--requests", str(args.requests)],
                capture_output=True,
                text=True,
                check=True,
                cwd=REPO,
            ).stdout
            for line in output.splitlines():
                path, ms = line.split("\t")
                key = (variant, path)
                best[key] = min(best.get(key, float("inf")), float(ms))
    print(f"{'path':<22} {'patched CPU ms':>15} {'plain CPU ms':>13} {'saved':>7}")
    for path in PATHS:
        patched, plain = best[("patched", path)], best[("plain", path)]
        print(f"{path:<22} {patched:>15.3f} {plain:>13.3f} {plain - patched:>7.3f}")


if __name__ == "__main__":
    main()
