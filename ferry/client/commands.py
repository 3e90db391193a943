"""The client commands of `ferry`: login, download, downloads, history, cancel, pause,
resume, import, and the file-tree commands (put, ls, rm, mkdir, mv, get).

They talk to a running server through `ferry.client.api`; this module registers them on
`ferry`'s command line, and runs each behind one guard: every failure prints the server's
code and message on stderr and exits non-zero.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable

from ferry.client.api import ApiError, ClientError, ConnectionFailed
from ferry.client.chat_import import cmd_import
from ferry.client.downloads import (
    cmd_cancel,
    cmd_download,
    cmd_downloads,
    cmd_history,
    cmd_pause,
    cmd_resume,
)
from ferry.client.file_commands import add_file_commands
from ferry.client.login import cmd_login
from ferry.client.render import EXIT_FAILED, EXIT_INTERRUPTED, LOGIN_HINT, err


def _guarded(
    command: Callable[[argparse.Namespace], int], *, hint_login: bool = True
) -> Callable[[argparse.Namespace], int]:
    """Turns the client's exceptions into a message on stderr and an exit status."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except ApiError as exc:
            err.print(f"ferry: error {exc.code}" + (f": {exc.message}" if exc.message else ""))
            if exc.status == 401 and hint_login:
                err.print(LOGIN_HINT)
            return EXIT_FAILED
        except ConnectionFailed as exc:
            err.print(f"ferry: {exc}")
            return EXIT_FAILED
        except ClientError as exc:
            err.print(f"ferry: {exc}")
            return EXIT_FAILED
        except KeyboardInterrupt:
            err.print("ferry: interrupted")
            return EXIT_INTERRUPTED

    return run


# --- registration ----------------------------------------------------------------------

DOWNLOAD_DESCRIPTION = """\
Have the server download each URL given, and each URL of every --input-file, into
DIR. Several URLs are started by one request (a batch of up to 1000; more go in
several, --parallel at a time) and their answers printed in the order given; a refused
URL is reported on stderr and does not stop the others.

exit status: 0 when every download started (with --wait: completed), 1 when any
failed, 2 for a usage error, 130 on Ctrl-C (which stops the watching, not the downloads)."""

DOWNLOAD_EXAMPLES = """\
examples:
  ferry download https://example.com/a.iso --to Downloads --wait
  ferry download https://example.com/1.csv https://example.com/2.csv --to data
  ferry download -i urls.txt -j 16 --to Downloads --wait
  list-mirror-urls | ferry download -i - --to Downloads"""


def add_client_commands(subparsers) -> None:
    """Registers the client commands on `ferry`'s subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--server", help="the Ferry server's URL [env FERRY_URL; default: the saved login]"
    )
    common.add_argument("--token", help="auth token [env FERRY_TOKEN; default: the saved login]")

    login = subparsers.add_parser(
        "login",
        parents=[common],
        help="log in to a server and save the token",
        description="Log in and save the server, user id and token in "
        "$XDG_CONFIG_HOME/ferry/client.json (default ~/.config/ferry/client.json, mode 0600). "
        "The password is prompted for, or read from standard input when it is not a terminal.",
    )
    login.add_argument("--user", help="user name or email (default: the saved one)")
    # A refused login is answered by its own error; the hint to log in would only repeat it.
    login.set_defaults(run=_guarded(cmd_login, hint_login=False))

    download = subparsers.add_parser(
        "download",
        parents=[common],
        help="have the server download one or many URLs into a directory",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=DOWNLOAD_DESCRIPTION,
        epilog=DOWNLOAD_EXAMPLES,
    )
    download.add_argument("urls", nargs="*", metavar="URL", help="http or https URL")
    download.add_argument(
        "-i",
        "--input-file",
        action="append",
        dest="input_files",
        metavar="FILE",
        help="read URLs from FILE, one a line; blank lines and lines starting with # are "
        "skipped; '-' reads standard input (may be repeated)",
    )
    download.add_argument(
        "--to", required=True, metavar="DIR", help="directory under the file root ('/' for the top)"
    )
    download.add_argument(
        "--filename", help="name for the file (default: from the server); one URL only"
    )
    download.add_argument(
        "--timeout",
        type=int,
        metavar="S",
        help="seconds each download may go without receiving a byte (default: the server's"
        " --download-timeout); a slow but moving download is not cut off",
    )
    download.add_argument(
        "--checksum",
        metavar="ALGO:HEX",
        help="sha256, sha512, sha1 or md5 the file must match before it is saved; one URL only",
    )
    download.add_argument(
        "-j",
        "--parallel",
        type=int,
        default=8,
        metavar="N",
        help="batch start requests (1000 URLs each) in flight at once (default 8); how many "
        "transfer at once is the server's --max-concurrent-downloads",
    )
    download.add_argument(
        "--wait",
        action="store_true",
        help="show progress until every download ends, then a summary; fail if any fails",
    )
    download.set_defaults(run=_guarded(cmd_download), usage_error=download.error)

    downloads = subparsers.add_parser(
        "downloads",
        parents=[common],
        help="active downloads with live progress bars (Ctrl-C to stop)",
    )
    downloads.add_argument("--once", action="store_true", help="print a table and exit")
    downloads.add_argument("--json", action="store_true", help="print the list as JSON and exit")
    downloads.set_defaults(run=_guarded(cmd_downloads))

    history = subparsers.add_parser(
        "history", parents=[common], help="finished downloads, newest first"
    )
    history.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    history.add_argument("--json", action="store_true", help="print JSON")
    history.set_defaults(run=_guarded(cmd_history))

    cancel = subparsers.add_parser("cancel", parents=[common], help="cancel an active download")
    cancel.add_argument(
        "id", help="the download id, or any unique start of it (as in `ferry downloads`)"
    )
    cancel.set_defaults(run=_guarded(cmd_cancel), usage_error=cancel.error)

    for name, command, summary in (
        ("pause", cmd_pause, "pause a download, keeping what it has received when it can"),
        ("resume", cmd_resume, "go on with a paused download"),
    ):
        control = subparsers.add_parser(name, parents=[common], help=summary)
        control.add_argument(
            "id", help="the download id, or any unique start of it (as in `ferry downloads`)"
        )
        control.set_defaults(run=_guarded(command), usage_error=control.error)

    imports = subparsers.add_parser(
        "import",
        parents=[common],
        help="import a chat export (file or URL), or `ferry import status`",
        description="Upload FILE (streamed) or have the server fetch URL, wait until it is "
        "prepared, show what it holds, import it and follow the progress. "
        "`ferry import status` shows the current operation.",
    )
    imports.add_argument("source", metavar="FILE_OR_URL", help="an export file, a URL, or `status`")
    imports.add_argument("--importer", help="csv, slack, slack-users or hipchatenterprise")
    imports.add_argument("--all", action="store_true", help="import every user and channel")
    imports.add_argument(
        "--select", action="store_true", help="choose users and channels at a numbered prompt"
    )
    imports.add_argument("--password", help="password of an encrypted HipChat export")
    imports.add_argument(
        "--server-path",
        action="store_true",
        help="FILE_OR_URL is a path inside the server's --import-folder",
    )
    imports.set_defaults(run=_guarded(cmd_import))
    add_file_commands(subparsers, common, _guarded)
