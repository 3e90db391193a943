"""Path battery: hostile directory and file names against every place a name comes in.

Browsing (`GET /{path}`), `?download=` into a directory, `filename=`, the import file
name (JSON `fileName` and the multipart file name) and local `downloadPublicImportFile`
paths. Outside the data root sits a secret, a planted import export and symlinks that
point at them from inside; the test walks the disk before and after and proves that
nothing outside the data root was written, nothing outside was read back, and every
file the server made lies where it belongs.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from urllib.parse import quote

import pytest

from handlers.app import create_app
from tests.api.test_import_api import csv_export
from tests.conftest import ADMIN_PASSWORD, log_in, make_config
from tests.support.remote import RemoteServer, wait_until

SECRET = b"TOP-SECRET-OUTSIDE-THE-ROOT"

# Written as they would be typed; `{outside}` is an absolute directory outside the root.
HOSTILE_NAMES = [
    "..",
    "../",
    "../..",
    "../../outside",
    "../../outside/secret.txt",
    "../state",
    "../state/users.json",
    "./../outside",
    "sub/../../../outside",
    "a/b/../../../../outside",
    "%2e%2e",
    "%2e%2e/%2e%2e/outside",
    "%2E%2E%2F%2E%2E%2Foutside",
    ".%2e/outside",
    "%2e./outside",
    "%252e%252e/outside",
    "%252e%252e%252f%252e%252e%252foutside",
    "%25252e%25252e",
    "..%2f..%2foutside",
    "..%252f..%252foutside",
    "%c0%ae%c0%ae/outside",
    "%c0%ae%c0%ae%c0%af%c0%ae%c0%ae%c0%afoutside",
    "..%c0%af..%c0%afoutside",
    "%e0%80%ae%e0%80%ae/outside",
    "..%e0%80%af..%e0%80%afoutside",
    "%f0%80%80%ae%f0%80%80%ae/outside",
    "..\x00/outside",
    "secret.txt\x00.png",
    "%00",
    "a%00b",
    "..\\..\\outside",
    "..%5c..%5coutside",
    "%5c..%5c..%5coutside",
    "\\\\server\\share",
    "C:\\Windows\\win.ini",
    "C:/outside",
    "{outside}",
    "{outside}/secret.txt",
    "//{outside}",
    "%2f{outside}",
    "file://{outside}/secret.txt",
    "\u2024\u2024/outside",
    "\uff0e\uff0e/outside",
    "\u2025/outside",
    "\ufe52\ufe52/outside",
    ".\u200b./outside",
    "\u202e..\u202c/outside",
    "..\u2215..\u2215outside",
    "..\uff0f..\uff0foutside",
    "....//....//outside",
    "..;/outside",
    "...",
    "~",
    "~root/.ssh",
    "$HOME",
    ".hidden",
    ".ferry.part",
    "api/../../outside",
    "escape",
    "escape/secret.txt",
    "link.txt",
    "escape/../secret.txt",
    "a\r\nSet-Cookie: x=1",
    "%0d%0aX-Injected: 1",
    "%ff%fe",
    "\udcff",
    "x" * 300,
    "a/" * 2100,
    "CON",
    "nul.txt",
    " ",
    "%20..%20/outside",
]


def snapshot(root: Path, skip: Path) -> dict[str, tuple]:
    """Every entry under `root` but outside `skip`: type, size, hash, mtime."""
    seen = {}
    for directory, dirs, files in os.walk(root, followlinks=False):
        if Path(directory) == skip or skip in Path(directory).parents:
            dirs.clear()
            continue
        for name in dirs + files:
            path = Path(directory) / name
            info = path.lstat()
            digest = ""
            if path.is_file() and not path.is_symlink():
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            seen[str(path)] = (info.st_mode, info.st_size, info.st_mtime_ns, digest)
    return seen


@pytest.fixture
def world(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    import_folder = tmp_path / "import-folder"
    import_folder.mkdir()
    csv_export(tmp_path).replace(outside / "planted.zip")
    (import_folder / "escape").symlink_to(outside)
    (import_folder / "link.zip").symlink_to(outside / "planted.zip")
    data = tmp_path / "data"
    app = create_app(
        make_config(
            data, allow_download=True, allow_private_networks=True, import_folder=import_folder
        )
    )
    files = app.services.config.files_dir
    (files / "escape").symlink_to(outside)
    (files / "link.txt").symlink_to(outside / "secret.txt")
    (files / "sub").mkdir()
    app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
    with RemoteServer() as remote, app.test_client() as client:
        yield app, client, log_in(client, "admin", ADMIN_PASSWORD), remote, tmp_path, outside
    app.services.close()


def names(outside: Path) -> list[str]:
    return [name.replace("{outside}", str(outside).lstrip("/")) for name in HOSTILE_NAMES]


def url_forms(name: str) -> list[str]:
    """The name as a URL path: raw where a URL can carry it, and fully percent-encoded."""
    raw = name.encode("utf-8", "surrogatepass")
    forms = [quote(raw, safe="/%:;~$\\")]
    encoded = quote(name.encode("utf-8", "surrogatepass"), safe="/")
    if encoded not in forms:
        forms.append(encoded)
    return forms


@pytest.mark.slow
def test_hostile_names_never_reach_outside_the_data_root(world):
    app, client, admin, remote, tmp_path, outside = world
    data_root = app.services.config.data_dir
    before = snapshot(tmp_path, data_root)
    url = remote.file("/payload.bin", b"payload")
    hostile = names(outside)
    assert len(hostile) >= 70
    tried = 0
    leaks: list[tuple] = []

    def check(case: str, response) -> None:
        nonlocal tried
        tried += 1
        if SECRET in response.content or b"billy.bob" in response.content:
            leaks.append((case, response.status_code, response.content[:200]))
        if response.status_code >= 500:
            leaks.append((case, response.status_code, response.text[:200]))

    for name in hostile:
        for form in url_forms(name):
            check(f"browse {name!r}", client.get(f"/{form}", headers=admin.headers))
            check(
                f"download into {name!r}",
                client.get(f"/{form}", params={"download": url}, headers=admin.headers),
            )
        safe = name.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        check(
            f"filename {name!r}",
            client.get("/sub", params={"download": url, "filename": safe}, headers=admin.headers),
        )
        check(
            f"fileName {name!r}",
            client.post(
                "/api/v1/uploadImportFile",
                headers=admin.headers,
                json={
                    "binaryContent": base64.b64encode(b"not a zip").decode(),
                    "contentType": "application/zip",
                    "fileName": safe,
                    "importerKey": "csv",
                },
            ),
        )
        check(
            f"multipart {name!r}",
            client.post(
                "/api/v1/uploadImportFile",
                headers=admin.headers,
                files={"file": (safe, b"not a zip", "application/zip")},
                data={"importerKey": "csv"},
            ),
        )
        local = client.post(
            "/api/v1/downloadPublicImportFile",
            headers=admin.headers,
            json={"fileUrl": safe, "importerKey": "csv"},
        )
        check(f"local path {name!r}", local)
        if local.status_code == 200:
            leaks.append((f"local path {name!r} was accepted", local.json()))
    for planted in ("escape/planted.zip", "link.zip", str(outside / "planted.zip")):
        response = client.post(
            "/api/v1/downloadPublicImportFile",
            headers=admin.headers,
            json={"fileUrl": planted, "importerKey": "csv"},
        )
        check(f"local path {planted!r}", response)
        if response.json().get("errorType") != "error-import-file-missing":
            leaks.append((planted, response.json()))

    assert wait_until(lambda: not app.services.downloads.active(), timeout=30)
    after = snapshot(tmp_path, data_root)
    changed = {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}
    print(
        f"path battery: {len(hostile)} names, {tried} requests, {len(leaks) + len(changed)} failed"
    )
    assert changed == set()
    assert leaks == []
    assert_everything_made_stays_in_place(app)


def assert_everything_made_stays_in_place(app) -> None:
    config = app.services.config
    files, state = config.files_dir.resolve(), config.state_dir.resolve()
    for directory, dirs, entries in os.walk(config.data_dir, followlinks=False):
        for entry in dirs + entries:
            path = Path(directory) / entry
            if path.is_symlink():
                # Only the two planted by the test; the server never makes links.
                assert path.parent.resolve() == files and entry in ("escape", "link.txt")
                continue
            real = path.resolve()
            assert real.is_relative_to(files) or real.is_relative_to(state), real
            if real.is_relative_to(state / "import-files"):
                # state/import-files/<operation>/<stored name>, nothing deeper.
                assert len(real.relative_to(state / "import-files").parts) <= 2, real
