"""The command-line client against a real `ferry serve`: login, downloads, cancel, errors,
an import, and the live progress display in a pseudo-terminal."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import select
import signal
import stat
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
import requests

from tests.api.test_import_api import csv_export
from tests.live.test_serve import free_port, start, wait_until_up
from tests.support.remote import RemoteServer, pattern_bytes, wait_until

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parents[2]
ADMIN = {"FERRY_ADMIN_USERNAME": "root", "FERRY_ADMIN_PASSWORD": "client-cli-pw-1"}
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]")


@pytest.fixture(scope="module")
def ferry(tmp_path_factory):
    """One server for the module, with downloads on, loopback allowed and one domain
    blocked (the start of a URL there is refused without any network access)."""
    home = tmp_path_factory.mktemp("client-cli")
    port = free_port()
    with (home / "ferry.log").open("w") as log:
        process = start(
            home / "data",
            port,
            "--allow-download",
            "--allow-private-networks",
            "--download-blocked-domains",
            "blocked.test",
            env={**ADMIN, "PYTHONPATH": _pythonpath()},
            output=log,
        )
        try:
            wait_until_up(port, process)
            yield {"base": f"http://127.0.0.1:{port}", "data": home / "data", "home": home}
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def remote():
    with RemoteServer() as server:
        yield server


def _pythonpath() -> str:
    return os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)


def cli_env(config_home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(config_home), "PYTHONPATH": _pythonpath()}
    for name in ("FERRY_URL", "FERRY_TOKEN"):
        env.pop(name, None)
    env.update(extra)
    return env


def run(env: dict, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ferry.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.fixture(scope="module")
def logged_in(ferry):
    """`ferry login` once; its saved config is what every other command uses."""
    config_home = ferry["home"] / "config"
    env = cli_env(config_home)
    done = run(env, "login", "--server", ferry["base"], "--user", "root", stdin="client-cli-pw-1\n")
    assert done.returncode == 0, done.stderr
    return {"env": env, "config": config_home / "ferry" / "client.json", "output": done.stdout}


def started_paths(stdout: str) -> list[str]:
    return re.findall(r"^Download \S+ started: (.+)$", stdout, re.MULTILINE)


def api(ferry, logged_in) -> dict[str, str]:
    token = json.loads(logged_in["config"].read_text())["authToken"]
    return {"Authorization": f"Bearer {token}"}


def test_login_saves_a_private_config_that_works(ferry, logged_in, tmp_path):
    path = logged_in["config"]
    assert "Logged in" in logged_in["output"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["server"] == ferry["base"] and saved["username"] == "root"
    assert saved["userId"] and saved["authToken"]
    me = requests.get(f"{ferry['base']}/api/v1/me", headers=api(ferry, logged_in), timeout=5)
    assert me.json()["_id"] == saved["userId"]

    wrong = run(
        cli_env(tmp_path), "login", "--server", ferry["base"], "--user", "root", stdin="nope\n"
    )
    assert wrong.returncode != 0 and "ferry: error" in wrong.stderr
    assert not (tmp_path / "ferry" / "client.json").exists()


def test_download_wait_completes_and_history_shows_it(ferry, logged_in, remote):
    url = remote.generated("/cli-file.bin", 300_000)
    done = run(logged_in["env"], "download", url, "--to", "cli/got", "--wait")
    assert done.returncode == 0, done.stderr
    assert "completed cli/got/cli-file.bin" in done.stdout
    download_id = re.search(r"Download (\S+) started", done.stdout).group(1)
    saved = ferry["data"] / "files" / "cli" / "got" / "cli-file.bin"
    assert saved.read_bytes() == pattern_bytes(300_000)

    history = run(logged_in["env"], "history")
    assert history.returncode == 0, history.stderr
    line = next(row for row in history.stdout.splitlines() if download_id in row)
    assert "completed" in line and "cli/got/cli-file.bin" in line


def test_cancel_stops_a_slow_download(ferry, logged_in, remote):
    url = remote.trickle("/cli-slow.bin", pieces=2000, piece=b"s" * 1024, pause=0.05)
    started = run(logged_in["env"], "download", url, "--to", "cli/slow")
    assert started.returncode == 0, started.stderr
    download_id = re.search(r"Download (\S+) started", started.stdout).group(1)
    assert download_id in run(logged_in["env"], "downloads", "--once").stdout

    cancelled = run(logged_in["env"], "cancel", download_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"Cancelled {download_id}" in cancelled.stdout
    history = run(logged_in["env"], "history", "--json")
    entry = next(e for e in json.loads(history.stdout) if e["id"] == download_id)
    assert (entry["status"], entry["error"]) == ("cancelled", "DOWNLOAD_CANCELLED")
    assert not (ferry["data"] / "files" / "cli" / "slow" / "cli-slow.bin").exists()

    again = run(logged_in["env"], "cancel", download_id)
    assert again.returncode != 0 and "ferry: error" in again.stderr


def test_errors_print_the_code_and_exit_non_zero(ferry, logged_in, remote, tmp_path):
    env = logged_in["env"]
    invalid = run(env, "download", "ftp://example.com/file", "--to", "cli")
    assert invalid.returncode == 1 and "INVALID_URL" in invalid.stderr

    missing = run(env, "download", remote.status("/cli-gone", 404), "--to", "cli", "--wait")
    assert missing.returncode == 1 and "REMOTE_FILE_NOT_FOUND" in missing.stderr

    importer = run(env, "import", str(csv_export(tmp_path)), "--importer", "png", "--all")
    assert importer.returncode == 1 and "error-importer-not-defined" in importer.stderr

    anonymous = run(cli_env(tmp_path / "nobody", FERRY_URL=ferry["base"]), "history")
    assert anonymous.returncode == 1 and "unauthorized" in anonymous.stderr.lower()

    nowhere = run(env, "history", "--server", f"http://127.0.0.1:{free_port()}")
    assert nowhere.returncode == 1 and "cannot reach the Ferry server" in nowhere.stderr
    assert "Traceback" not in nowhere.stderr


def test_import_a_csv_export_with_all_then_status_says_done(logged_in, remote, tmp_path):
    env = logged_in["env"]
    export = csv_export(tmp_path)
    done = run(env, "import", str(export), "--importer", "csv", "--all")
    assert done.returncode == 0, done.stderr
    assert "Prepared (CSV): 2 users, 5 channels, 3 messages" in done.stdout
    assert "billy.bob" in done.stdout and "Import done." in done.stdout
    assert "users: 2 created" in done.stdout

    status = run(env, "import", "status")
    assert status.returncode == 0 and "state: done" in status.stdout

    # From a URL (downloadPublicImportFile), choosing one user and no channel at the prompt.
    url = remote.file("/cli-export.zip", export.read_bytes())
    chosen = run(env, "import", url, "--importer", "csv", "--select", stdin="1\nnone\n")
    assert chosen.returncode == 0, chosen.stderr
    assert (
        "Import done." in chosen.stdout and "users: 0 created, 1 matched existing" in chosen.stdout
    )


def test_import_of_a_broken_file_fails_with_the_operations_error(logged_in, tmp_path):
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"this is not a zip archive")
    failed = run(logged_in["env"], "import", str(broken), "--importer", "slack", "--all")
    assert failed.returncode == 1 and "not a zip archive" in failed.stderr
    assert "state: error" in run(logged_in["env"], "import", "status").stdout


@contextlib.contextmanager
def in_terminal(env: dict, *args: str, rows: int = 30, columns: int = 140):
    """`ferry ARGS` in a pseudo-terminal of that size; yields the process and a function
    returning what the screen has shown so far, without escape codes."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {**env, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(rows)}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "ferry.cli", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
        # As a shell does for a job in its terminal: Ctrl-C interrupts, even when this
        # test run was started in the background, which ignores SIGINT for its children.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    os.close(slave)
    screen = []
    # poll, not select: select() refuses descriptors above 1023, which a long test run reaches.
    readable = select.poll()
    readable.register(master, select.POLLIN)

    def shown() -> str:
        with contextlib.suppress(OSError):
            while readable.poll(50):
                chunk = os.read(master, 65536)
                if not chunk:
                    break
                screen.append(chunk.decode(errors="replace"))
        return ANSI.sub("", "".join(screen))

    try:
        yield process, shown
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)


def test_live_progress_in_a_terminal_shows_bytes_speed_and_eta(ferry, logged_in, remote):
    url = remote.trickle("/cli-tty.bin", pieces=400, piece=b"t" * 16_384, pause=0.1)
    started = requests.get(
        f"{ferry['base']}/cli/tty",
        params={"download": url},
        headers=api(ferry, logged_in),
        timeout=5,
    ).json()
    bar = re.compile(r"cli-tty\.bin.*━.*\d+%\s+[\d.]+/6\.6 MB\s+[\d.]+ [kM]B/s\s+ETA \d+:\d\d:\d\d")
    with in_terminal(logged_in["env"], "downloads") as (watcher, shown):
        assert wait_until(lambda: bar.search(shown()) is not None, timeout=15), shown()[-2000:]
        # A download that ends while watched leaves a line with its outcome.
        requests.delete(
            f"{ferry['base']}/api/v1/downloads/{started['download_id']}",
            headers=api(ferry, logged_in),
            timeout=5,
        )
        assert wait_until(lambda: "DOWNLOAD_CANCELLED" in shown(), timeout=10), shown()[-2000:]
        os.killpg(watcher.pid, signal.SIGINT)
        assert watcher.wait(timeout=10) == 0


def test_many_urls_and_an_input_file_all_start_and_complete(ferry, logged_in, remote, tmp_path):
    sizes = {"one.bin": 200_000, "two.bin": 1, "three.bin": 70_000, "four.bin": 300_001}
    urls = {name: remote.generated(f"/many/{name}", size) for name, size in sizes.items()}
    skipped = remote.generated("/many/commented-out.bin", 10)
    listing = tmp_path / "urls.txt"
    listing.write_text(
        f"# mirror list\n\n{urls['three.bin']}\n   \n#{skipped}\n  {urls['four.bin']}  \n"
    )

    done = run(
        logged_in["env"],
        "download",
        urls["one.bin"],
        urls["two.bin"],
        "-i",
        str(listing),
        "--to",
        "cli/many",
        "--parallel",
        "2",
        "--wait",
    )

    assert done.returncode == 0, done.stderr
    assert started_paths(done.stdout) == [f"cli/many/{name}" for name in sizes]
    for name, size in sizes.items():
        assert f"completed cli/many/{name} (" in done.stdout
        assert (ferry["data"] / "files" / "cli" / "many" / name).read_bytes() == pattern_bytes(size)
    assert done.stdout.splitlines()[-1] == "4 completed, 0 failed"
    assert done.stderr == ""
    assert not (ferry["data"] / "files" / "cli" / "many" / "commented-out.bin").exists()
    assert not any(r.path == "/many/commented-out.bin" for r in remote.requests)


def test_refused_urls_are_reported_while_the_others_complete(ferry, logged_in, remote):
    good = [remote.generated(f"/mixed/good-{n}.bin", 50_000 * n) for n in (1, 2)]
    blocked = "http://files.blocked.test/mixed/blocked.bin"
    invalid = "ftp://127.0.0.1/mixed/invalid.bin"
    gone = remote.status("/mixed/gone.bin", 404)

    done = run(
        logged_in["env"],
        "download",
        good[0],
        blocked,
        gone,
        invalid,
        good[1],
        "--to",
        "cli/mixed",
        "--wait",
    )

    assert done.returncode == 1
    assert started_paths(done.stdout) == [
        "cli/mixed/good-1.bin",
        "cli/mixed/gone.bin",
        "cli/mixed/good-2.bin",
    ]
    for n in (1, 2):
        assert f"completed cli/mixed/good-{n}.bin" in done.stdout
        saved = ferry["data"] / "files" / "cli" / "mixed" / f"good-{n}.bin"
        assert saved.read_bytes() == pattern_bytes(50_000 * n)
    summary = done.stdout.splitlines().index("2 completed, 3 failed")
    assert summary == len(done.stdout.splitlines()) - 1
    errors = done.stderr.splitlines()
    assert f"({blocked})" in next(line for line in errors if "DOMAIN_BLOCKED" in line)
    assert f"({invalid})" in next(line for line in errors if "INVALID_URL" in line)
    assert "cli/mixed/gone.bin failed" in next(
        line for line in errors if "REMOTE_FILE_NOT_FOUND" in line
    )
    assert not (ferry["data"] / "files" / "cli" / "mixed" / "blocked.bin").exists()


def test_without_wait_a_refusal_still_exits_non_zero_after_starting_the_rest(
    ferry, logged_in, remote
):
    good = remote.generated("/nowait/good.bin", 1000)
    blocked = "https://blocked.test/nowait/no.bin"
    done = run(
        logged_in["env"], "download", "-i", "-", "--to", "cli/nowait", stdin=f"{blocked}\n{good}\n"
    )
    assert done.returncode == 1
    assert started_paths(done.stdout) == ["cli/nowait/good.bin"]
    refusal, count = done.stderr.splitlines()
    assert refusal.startswith("ferry: error DOMAIN_BLOCKED: ") and refusal.endswith(f"({blocked})")
    assert count == "ferry: 1 of 2 downloads could not be started"
    saved = ferry["data"] / "files" / "cli" / "nowait" / "good.bin"
    assert wait_until(saved.exists, timeout=20)


def test_filename_with_more_than_one_url_is_a_usage_error(ferry, logged_in, remote, tmp_path):
    urls = [remote.generated(f"/named/{n}.bin", 10) for n in (1, 2)]
    listing = tmp_path / "urls.txt"
    listing.write_text(f"# only one\n{urls[1]}\n")
    env = logged_in["env"]

    both = run(env, "download", *urls, "--to", "cli/named", "--filename", "x.bin")
    assert both.returncode == 2 and both.stdout == ""
    assert "--filename names a single file, but 2 URLs were given" in both.stderr
    mixed = run(env, "download", urls[0], "-i", str(listing), "--to", "cli", "--filename", "x")
    assert mixed.returncode == 2 and "--filename" in mixed.stderr
    assert not any(r.path.startswith("/named/") for r in remote.requests)

    # One URL from a file is the single-URL form, so the name applies.
    one = run(env, "download", "-i", str(listing), "--to", "cli/named", "--filename", "x.bin")
    assert one.returncode == 0, one.stderr
    assert started_paths(one.stdout) == ["cli/named/x.bin"]


def test_an_input_file_without_urls_is_a_usage_error(logged_in, tmp_path):
    listing = tmp_path / "urls.txt"
    listing.write_text("# nothing yet\n\n")
    empty = run(logged_in["env"], "download", "-i", str(listing), "--to", "cli")
    assert empty.returncode == 2 and "no URL to download" in empty.stderr
    missing = run(logged_in["env"], "download", "-i", str(tmp_path / "nope.txt"), "--to", "cli")
    assert missing.returncode == 2 and "cannot read the input file" in missing.stderr


def test_many_downloads_in_a_terminal_get_a_row_each_and_ctrl_c_leaves_them_going(
    ferry, logged_in, remote
):
    slow = [
        remote.trickle(f"/tty-many/slow-{n}.bin", pieces=2000, piece=b"s" * 1024, pause=0.05)
        for n in range(1, 5)
    ]
    fast = remote.generated("/tty-many/fast.bin", 5000)
    # Five lines: room for three rows and the line counting the rest.
    args = ("download", fast, *slow, "--to", "cli/tty-many", "--wait")
    with in_terminal(logged_in["env"], *args, rows=5) as (follower, shown):
        ids = []

        def rows_and_footer_shown() -> bool:
            screen = shown()
            ids[:] = re.findall(r"Download (\S+) started", screen)
            return (
                "✓ completed cli/tty-many/fast.bin" in screen
                and re.search(r"slow-1\.bin.*━", screen) is not None
                and "… and 1 more" in screen
            )

        try:
            assert wait_until(rows_and_footer_shown, timeout=20), shown()[-2000:]
            os.killpg(follower.pid, signal.SIGINT)
            assert follower.wait(timeout=10) == 130
            assert wait_until(lambda: "stopped watching; the downloads go on" in shown())
            active = requests.get(
                f"{ferry['base']}/api/v1/downloads", headers=api(ferry, logged_in), timeout=5
            ).json()["downloads"]
            assert len(ids) == 5 and set(ids[1:]) <= {entry["id"] for entry in active}
        finally:
            for download_id in ids[1:]:
                requests.delete(
                    f"{ferry['base']}/api/v1/downloads/{download_id}",
                    headers=api(ferry, logged_in),
                    timeout=5,
                )


def test_cancel_accepts_a_unique_start_of_the_id(ferry, logged_in, remote):
    url = remote.trickle("/cli-prefix.bin", pieces=2000, piece=b"p" * 1024, pause=0.05)
    started = run(logged_in["env"], "download", url, "--to", "cli/prefix")
    assert started.returncode == 0, started.stderr
    download_id = re.search(r"Download (\S+) started", started.stdout).group(1)

    unknown = run(logged_in["env"], "cancel", "zz")
    assert unknown.returncode == 2 and "no download of yours" in unknown.stderr
    cancelled = run(logged_in["env"], "cancel", download_id[:8])
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"Cancelled {download_id}" in cancelled.stdout
    history = json.loads(run(logged_in["env"], "history", "--json").stdout)
    assert next(e for e in history if e["id"] == download_id)["status"] == "cancelled"


def test_download_to_a_file_on_the_server_is_a_usage_error(ferry, logged_in, remote):
    existing = ferry["data"] / "files" / "cli" / "taken.txt"
    existing.parent.mkdir(parents=True, exist_ok=True)
    existing.write_text("already here\n")
    url = remote.generated("/never-fetched.bin", 10)

    refused = run(logged_in["env"], "download", url, "--to", "cli/taken.txt")
    assert refused.returncode == 2 and refused.stdout == ""
    assert "--to names a file on the server" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not any(r.path == "/never-fetched.bin" for r in remote.requests)
