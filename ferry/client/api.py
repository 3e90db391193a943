"""HTTP side of the command-line client: where the server and token come from, and one
small `FerryClient` over `requests` that turns every non-2xx answer into `ApiError`.

Nothing here prints; the command modules of `ferry.client` render.
"""

from __future__ import annotations

import json
import mimetypes
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import requests

DEFAULT_SERVER = "http://127.0.0.1:3000"
REQUEST_TIMEOUT = 30.0
UPLOAD_BLOCK = 256 * 1024


class ClientError(Exception):
    """Anything the client reports and exits non-zero for."""


class ConnectionFailed(ClientError):
    def __init__(self, server: str, reason: str):
        super().__init__(f"cannot reach the Ferry server at {server}: {reason}")
        self.server = server


class ApiError(ClientError):
    """A non-2xx answer: `code` is the machine-readable part (`errorType`, else `error`)."""

    def __init__(self, status: int, body: Any):
        self.status = status
        self.body = body if isinstance(body, dict) else {}
        error = self.body.get("error")
        self.code = str(self.body.get("errorType") or error or f"HTTP {status}")
        parts = [str(p) for p in (self.body.get("message"), error) if p and str(p) != self.code]
        if not parts and not isinstance(body, dict) and body:
            parts = [str(body)[:200]]
        self.message = " - ".join(dict.fromkeys(parts))
        super().__init__(f"{self.code}: {self.message}" if self.message else self.code)


# --- where the server and the token come from -----------------------------------------


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ferry" / "client.json"


def load_saved(path: Path) -> dict:
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return saved if isinstance(saved, dict) else {}


def save_login(path: Path, server: str, username: str, user_id: str, token: str) -> None:
    """Write the credentials readable by the owner only (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w") as out:
            json.dump(
                {"server": server, "username": username, "userId": user_id, "authToken": token},
                out,
                indent=2,
            )
            out.write("\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def normalize_server(url: str) -> str:
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"http://{url}"
    return url


@dataclass(frozen=True)
class Target:
    server: str
    token: str | None
    user_id: str | None = None


def resolve_target(
    server: str | None, token: str | None, environ: Mapping[str, str], saved: dict
) -> Target:
    """Flag, then FERRY_URL / FERRY_TOKEN, then the saved login.

    The saved token is only sent to the server it was issued by, so `--server` pointing
    elsewhere never leaks it.
    """
    chosen = normalize_server(
        server or environ.get("FERRY_URL") or saved.get("server") or DEFAULT_SERVER
    )
    given = token or environ.get("FERRY_TOKEN")
    if given:
        return Target(chosen, given)
    if saved.get("authToken") and normalize_server(saved.get("server") or "") == chosen:
        return Target(chosen, saved["authToken"], saved.get("userId"))
    return Target(chosen, None)


# --- a streamed multipart body ----------------------------------------------------------


class MultipartUpload:
    """A multipart/form-data body read from disk block by block, with a known length.

    `requests` sends a body that has `read` and `__len__` with a Content-Length and
    streams it, so a large export never sits in memory (unlike `files=`).
    """

    def __init__(
        self,
        fields: dict[str, str],
        file_field: str,
        path: Path,
        on_progress: Callable[[int], None] | None = None,
    ):
        self.boundary = f"ferry-{uuid.uuid4().hex}"
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        head = b"".join(self._part(name, value) for name, value in fields.items())
        file_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        safe_name = path.name.replace('"', "_").replace("\r", "_").replace("\n", "_")
        head += (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="{file_field}"; filename="{safe_name}"\r\n'
            f"Content-Type: {file_type}\r\n\r\n"
        ).encode()
        self._head = head
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.file_size = path.stat().st_size
        self._length = len(head) + self.file_size + len(self._tail)
        self._path = path
        self._file: IO[bytes] | None = None
        self._stage = 0  # 0 head, 1 file, 2 tail, 3 done
        self._pending = b""
        self._sent_file = 0
        self._on_progress = on_progress

    def _part(self, name: str, value: str) -> bytes:
        return (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        size = UPLOAD_BLOCK if size is None or size < 0 else size
        while not self._pending and self._stage < 3:
            self._pending = self._next_piece()
        piece, self._pending = self._pending[:size], self._pending[size:]
        return piece

    def _next_piece(self) -> bytes:
        if self._stage == 0:
            self._stage = 1
            self._file = self._path.open("rb")
            return self._head
        if self._stage == 1:
            assert self._file is not None
            # Exactly the size announced in Content-Length, even if the file grows meanwhile.
            block = self._file.read(min(UPLOAD_BLOCK, self.file_size - self._sent_file))
            if not block and self._sent_file < self.file_size:
                raise ClientError(f"{self._path} shrank while it was being uploaded")
            if block:
                self._sent_file += len(block)
                if self._on_progress:
                    self._on_progress(self._sent_file)
                return block
            self._file.close()
            self._stage = 2
            return b""
        self._stage = 3
        return self._tail

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


# --- the API ------------------------------------------------------------------------------

# What one batch start may hold: the server's limit on items, and a body well under its
# default --max-json-body (1 MiB).
BATCH_ITEMS = 1000
BATCH_BYTES = 512 * 1024
# The status a refused batch item would have had as a single start.
STATUS_BY_REFUSAL = {"DOMAIN_BLOCKED": 403, "DOWNLOAD_QUEUE_FULL": 503}


def _batch_item(url: str, directory: str, timeout: int | None) -> dict:
    item: dict[str, Any] = {"url": url, "directory": directory}
    if timeout:
        item["timeout"] = timeout
    return item


def _batches(directory: str, urls: Iterable[str], timeout: int | None) -> Iterator[list[str]]:
    """`urls` in order, cut into batches of at most BATCH_ITEMS and about BATCH_BYTES."""
    batch: list[str] = []
    size = 0
    for url in urls:
        item_size = len(json.dumps(_batch_item(url, directory, timeout))) + 1
        if batch and (len(batch) == BATCH_ITEMS or size + item_size > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(url)
        size += item_size
    if batch:
        yield batch


def _outcome(url: str, result: dict) -> StartOutcome:
    if result.get("success"):
        return StartOutcome(url, started=result)
    status = STATUS_BY_REFUSAL.get(result.get("error"), 400)
    return StartOutcome(url, error=ApiError(status, result))


@dataclass(frozen=True)
class StartOutcome:
    """What the server answered for one URL of `start_downloads`: the start or the error."""

    url: str
    started: dict | None = None
    error: ClientError | None = None


class FerryClient:
    def __init__(self, target: Target, session: requests.Session | None = None):
        self.target = target
        self.server = target.server
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = "ferry-cli"
        if target.token:
            self.session.headers["Authorization"] = f"Bearer {target.token}"

    def request(self, method: str, path: str, **kwargs) -> Any:
        kwargs.setdefault("timeout", REQUEST_TIMEOUT)
        try:
            response = self.session.request(method, f"{self.server}{path}", **kwargs)
        except requests.exceptions.ConnectionError as exc:
            raise ConnectionFailed(self.server, _reason(exc)) from None
        except requests.exceptions.Timeout:
            raise ConnectionFailed(self.server, "the server did not answer in time") from None
        except requests.exceptions.RequestException as exc:
            raise ConnectionFailed(self.server, str(exc)) from None
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if not response.ok:
            raise ApiError(response.status_code, body)
        return body

    def open_stream(self, path: str, headers: dict, read_timeout: float) -> requests.Response:
        """A streamed GET (the event stream): the response, its body not yet read."""
        try:
            response = self.session.get(
                f"{self.server}{path}",
                headers=headers,
                stream=True,
                timeout=(REQUEST_TIMEOUT, read_timeout),
            )
        except requests.exceptions.ConnectionError as exc:
            raise ConnectionFailed(self.server, _reason(exc)) from None
        except requests.exceptions.RequestException as exc:
            raise ConnectionFailed(self.server, str(exc)) from None
        if not response.ok:
            try:
                body = response.json()
            except ValueError:
                body = response.text
            response.close()
            raise ApiError(response.status_code, body)
        return response

    # Auth
    def login(self, user: str, password: str) -> dict:
        return self.request("POST", "/api/v1/login", json={"user": user, "password": password})[
            "data"
        ]

    # Downloads
    def start_download(
        self, directory: str, url: str, filename: str | None = None, timeout: int | None = None
    ) -> dict:
        params: dict[str, Any] = {"download": url}
        if filename:
            params["filename"] = filename
        if timeout:
            params["timeout"] = timeout
        answer = self.request("GET", _file_url(directory), params=params)
        if not isinstance(answer, dict) or "download_id" not in answer:
            # The path became a file since it was checked: the server sent the file back.
            raise ClientError(f"{directory} is a file on the server, not a directory")
        return answer

    def is_file(self, path: str) -> bool:
        """Whether `path` names a file in the server's tree: the server sends a file with an
        `ETag`, a listing without. Only the headers are read, and a path that cannot be looked
        at (missing, forbidden) is left for the request that needs it to report."""
        url = f"{self.server}{_file_url(path)}"
        try:
            with self.session.get(
                url, params={"count": 1}, stream=True, timeout=REQUEST_TIMEOUT
            ) as response:
                return response.ok and "ETag" in response.headers
        except requests.exceptions.ConnectionError as exc:
            raise ConnectionFailed(self.server, _reason(exc)) from None
        except requests.exceptions.RequestException as exc:
            raise ConnectionFailed(self.server, str(exc)) from None

    def start_downloads(
        self,
        directory: str,
        urls: Iterable[str],
        *,
        timeout: int | None = None,
        connections: int = 8,
    ) -> Iterator[StartOutcome]:
        """Starts every URL through the batch call (`POST /api/v1/downloads`, up to
        BATCH_ITEMS URLs and BATCH_BYTES of JSON a request), at most `connections` requests
        in flight, yielding one outcome per URL in the order given; a refused URL does not
        stop the others.

        Each worker thread has its own session because `requests.Session` is not
        thread-safe. Once the server cannot be reached the batches not yet sent get that
        failure without a try: with a server that times out, trying each would take
        minutes to say the same.
        """
        per_thread = threading.local()
        opened: list[FerryClient] = []
        opened_lock = threading.Lock()
        unreachable: list[ConnectionFailed] = []

        def start_batch(batch: list[str]) -> list[StartOutcome]:
            if unreachable:
                return [StartOutcome(url, error=unreachable[0]) for url in batch]
            client = getattr(per_thread, "client", None)
            if client is None:
                client = per_thread.client = FerryClient(self.target)
                with opened_lock:
                    opened.append(client)
            items = [_batch_item(url, directory, timeout) for url in batch]
            try:
                answer = client.request("POST", "/api/v1/downloads", json={"items": items})
            except ConnectionFailed as exc:
                unreachable.append(exc)
                return [StartOutcome(url, error=exc) for url in batch]
            except ClientError as exc:
                return [StartOutcome(url, error=exc) for url in batch]
            return [
                _outcome(url, result)
                for url, result in zip(batch, answer["downloads"], strict=True)
            ]

        pool = ThreadPoolExecutor(max_workers=connections, thread_name_prefix="ferry-start")
        try:
            for outcomes in pool.map(start_batch, _batches(directory, urls, timeout)):
                yield from outcomes
        finally:
            # On Ctrl-C the batches not yet sent are dropped; those in flight finish.
            pool.shutdown(wait=False, cancel_futures=True)
        for client in opened:
            client.session.close()

    def download(self, download_id: str) -> dict:
        return self.request("GET", f"/api/v1/downloads/{quote(download_id, safe='')}")["download"]

    def active_downloads(self) -> list[dict]:
        return self.request("GET", "/api/v1/downloads")["downloads"]

    def history(self) -> list[dict]:
        return self.request("GET", "/", params={"download_history": ""})["history"]

    def cancel(self, download_id: str) -> dict:
        return self.request("DELETE", f"/api/v1/downloads/{quote(download_id, safe='')}")[
            "download"
        ]

    # Imports
    def upload_import(
        self,
        path: Path,
        importer: str,
        password: str | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        fields = {"importerKey": importer}
        if password:
            fields["password"] = password
        body = MultipartUpload(fields, "file", path, on_progress)
        try:
            # No overall timeout on the body: a big file on a slow link takes what it takes.
            self.request(
                "POST",
                "/api/v1/uploadImportFile",
                data=body,
                headers={"Content-Type": body.content_type},
                timeout=(REQUEST_TIMEOUT, None),
            )
        finally:
            body.close()

    def import_from_url(self, url: str, importer: str, password: str | None = None) -> None:
        body = {"fileUrl": url, "importerKey": importer}
        if password:
            body["password"] = password
        # The server answers once the remote headers are in (it may wait up to a minute).
        self.request("POST", "/api/v1/downloadPublicImportFile", json=body, timeout=90)

    def import_file_data(self) -> dict:
        return self.request("GET", "/api/v1/getImportFileData")

    def start_import(self, selection: dict) -> None:
        self.request("POST", "/api/v1/startImport", json={"input": selection})

    def import_progress(self) -> dict:
        return self.request("GET", "/api/v1/getImportProgress")

    def import_status(self) -> dict:
        return self.request("GET", "/api/v1/import.status")


def _file_url(path: str) -> str:
    return "/" + quote(path.strip("/"), safe="/")


def client_for(server: str | None, token: str | None) -> FerryClient:
    """A client of the server and token given, else of FERRY_URL / FERRY_TOKEN, else of the
    saved login."""
    return FerryClient(resolve_target(server, token, os.environ, load_saved(config_path())))


def _reason(exc: requests.exceptions.ConnectionError) -> str:
    text = str(exc)
    if "Connection refused" in text or "ECONNREFUSED" in text:
        return "connection refused (is `ferry serve` running there?)"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host name"
    return text.split(": ", 1)[-1][:200] if text else exc.__class__.__name__
