"""The file-tree commands of `ferry`: put, ls, rm, mkdir, mv, get.

`ferry put` sends a file in one PUT, or, past RESUMABLE_FROM bytes or when an earlier
attempt was cut off, in PATCH parts that go on from where the server says that attempt
stopped (`X-Upload-Offset`).
"""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import requests

from ferry.client.api import REQUEST_TIMEOUT, ApiError, ClientError, client_for
from ferry.client.render import err, out, transfer_progress

RESUMABLE_FROM = 64 * 1024 * 1024
PART_SIZE = 16 * 1024 * 1024
CHUNK = 1024 * 1024


def _url(path: str) -> str:
    return "/" + quote(path.strip("/"), safe="/")


def _remote_for(local: Path, remote: str) -> str:
    """A REMOTE ending in `/` is a folder: the file keeps its name inside it."""
    return remote + local.name if remote.endswith("/") or not remote else remote


def _uploaded_so_far(client, remote: str) -> int:
    response = client.session.head(f"{client.server}{_url(remote)}", timeout=REQUEST_TIMEOUT)
    return int(response.headers.get("X-Upload-Offset", 0))


class FileSlice:
    """The next `length` bytes of an open file as a request body: `requests` streams an
    object with `read` and `__len__` with its Content-Length, never holding it in memory.
    Each block read is reported to `on_read`."""

    def __init__(self, source, length: int, on_read: Callable[[int], object]):
        self._source = source
        self._left = length
        self._length = length
        self._on_read = on_read

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        wanted = CHUNK if size is None or size < 0 else size
        block = self._source.read(min(wanted, self._left))
        if not block:
            # Exactly the length announced in Content-Length, or nothing.
            raise ClientError(f"{self._source.name} shrank while it was being uploaded")
        self._left -= len(block)
        self._on_read(len(block))
        return block


def _put_in_parts(
    client, local: Path, remote: str, size: int, overwrite: bool, offset: int, sent
) -> dict:
    params = {"size": size, "overwrite": str(overwrite).lower()}
    headers = {"X-Update-Range": "append"}
    result: dict = {}
    with local.open("rb") as source:
        source.seek(offset)
        while offset < size or not result:
            length = min(PART_SIZE, size - offset)
            part = FileSlice(source, length, sent)
            result = client.request(
                "PATCH", _url(remote), params=params, headers=headers, data=part, timeout=300
            )
            offset += length
            if not err.is_terminal:
                out.print(f"{remote}: {offset} of {size} bytes")
            if not length:
                break
    return result


def cmd_put(args: argparse.Namespace) -> int:
    client = client_for(args.server, args.token)
    local = Path(args.local)
    if not local.is_file():
        raise ClientError(f"{local} is not a file")
    remote = _remote_for(local, args.remote)
    size = local.stat().st_size
    # An earlier `ferry put` that was cut off is carried on, whatever the size.
    offset = _uploaded_so_far(client, remote)
    with transfer_progress(err) as progress:
        task = progress.add_task(f"put {remote}", total=size, completed=offset)
        sent = functools.partial(progress.advance, task)
        if size > RESUMABLE_FROM or offset:
            result = _put_in_parts(client, local, remote, size, args.overwrite, offset, sent)
        else:
            with local.open("rb") as source:
                result = client.request(
                    "PUT",
                    _url(remote),
                    params={"overwrite": str(args.overwrite).lower()},
                    data=FileSlice(source, size, sent),
                    timeout=300,
                )
    resumed = f", going on from byte {offset}" if offset else ""
    out.print(f"Uploaded {result['path']} ({result['size']} bytes{resumed})")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    client = client_for(args.server, args.token)
    params = {"count": 1000, "sort": args.sort, "order": "desc" if args.reverse else "asc"}
    listing = client.request("GET", _url(args.path), params=params)
    if not isinstance(listing, dict) or "entries" not in listing:
        raise ClientError(f"{args.path} is a file")
    for entry in listing["entries"]:
        suffix = "/" if entry["type"] == "directory" else ""
        out.print(f"{entry['size']}\t{entry['modified']}\t{entry['name']}{suffix}")
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    client = client_for(args.server, args.token)
    params = {"recursive": str(args.recursive).lower()}
    result = client.request("DELETE", _url(args.path), params=params)
    out.print(f"Deleted {result['path']}")
    return 0


def cmd_mkdir(args: argparse.Namespace) -> int:
    client = client_for(args.server, args.token)
    result = client.request("POST", _url(args.path), params={"mkdir": ""})
    out.print(f"Created {result['path']}/")
    return 0


def cmd_mv(args: argparse.Namespace) -> int:
    client = client_for(args.server, args.token)
    params = {"move": args.destination.strip("/"), "overwrite": str(args.overwrite).lower()}
    result = client.request("POST", _url(args.source), params=params)
    out.print(f"Moved to {result['path']}")
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    client = client_for(args.server, args.token)
    local = Path(args.local or Path(args.remote.rstrip("/")).name)
    if local.is_dir():
        local = local / Path(args.remote.rstrip("/")).name
    partial = local.with_name(f".{local.name}.part")
    try:
        with client.session.get(
            f"{client.server}{_url(args.remote)}", stream=True, timeout=REQUEST_TIMEOUT
        ) as response:
            if not response.ok:
                raise ApiError(response.status_code, response.json())
            if "ETag" not in response.headers:
                raise ClientError(f"{args.remote} is a folder")
            total = int(response.headers.get("Content-Length", 0)) or None
            with transfer_progress(err) as progress, partial.open("wb") as target:
                task = progress.add_task(f"get {args.remote}", total=total)
                for chunk in response.iter_content(CHUNK):
                    target.write(chunk)
                    progress.advance(task, len(chunk))
    except requests.exceptions.RequestException as exc:
        partial.unlink(missing_ok=True)
        raise ClientError(str(exc)) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, local)
    out.print(f"Saved {local}")
    return 0


def add_file_commands(subparsers, common, guarded) -> None:
    put = subparsers.add_parser("put", parents=[common], help="upload a file to the tree")
    put.add_argument("local", help="the local file")
    put.add_argument("remote", help="where it goes; ending in / keeps the file's name")
    put.add_argument("--overwrite", action="store_true", help="replace an existing file")
    put.set_defaults(run=guarded(cmd_put))

    ls = subparsers.add_parser("ls", parents=[common], help="list a folder of the tree")
    ls.add_argument("path", nargs="?", default="", help="the folder (default: the top)")
    ls.add_argument("--sort", choices=["name", "mtime", "size"], default="name")
    ls.add_argument("--reverse", action="store_true", help="largest, newest or Z first")
    ls.set_defaults(run=guarded(cmd_ls))

    rm = subparsers.add_parser("rm", parents=[common], help="delete a file or folder")
    rm.add_argument("path")
    rm.add_argument("-r", "--recursive", action="store_true", help="a folder and its contents")
    rm.set_defaults(run=guarded(cmd_rm))

    mkdir = subparsers.add_parser("mkdir", parents=[common], help="create a folder")
    mkdir.add_argument("path")
    mkdir.set_defaults(run=guarded(cmd_mkdir))

    mv = subparsers.add_parser("mv", parents=[common], help="move or rename a file or folder")
    mv.add_argument("source")
    mv.add_argument("destination")
    mv.add_argument("--overwrite", action="store_true", help="replace an existing destination")
    mv.set_defaults(run=guarded(cmd_mv))

    get = subparsers.add_parser("get", parents=[common], help="download a file of the tree")
    get.add_argument("remote")
    get.add_argument("local", nargs="?", help="file or folder (default: its name, here)")
    get.set_defaults(run=guarded(cmd_get))
