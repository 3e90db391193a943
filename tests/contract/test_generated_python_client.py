"""A Python client generated from openapi.yaml with openapi-python-client works against a
live `ferry serve`: log in, download a file from a local server and watch it finish, and
import a CSV export end to end, all through the generated functions and models."""

import base64
import importlib
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.api.test_import_api import csv_export
from tests.live.test_serve import free_port, start, wait_until_up
from tests.support.remote import RemoteServer, pattern_bytes

pytestmark = [pytest.mark.live, pytest.mark.slow]
SPEC = Path(__file__).resolve().parents[2] / "openapi.yaml"
ADMIN, PASSWORD = "client-admin", "client-admin-password"


def generator() -> str:
    beside_python = Path(sys.executable).with_name("openapi-python-client")
    found = str(beside_python) if beside_python.exists() else shutil.which("openapi-python-client")
    if found is None:
        pytest.fail("openapi-python-client is not installed (pip install -e '.[test]')")
    return found


@pytest.fixture(scope="module")
def ferry_client(tmp_path_factory):
    """The generated package, imported."""
    where = tmp_path_factory.mktemp("generated")
    subprocess.run(
        [generator(), "generate", "--path", str(SPEC), "--meta", "none"]
        + ["--output-path", str(where / "ferry_client")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module("ferry_client")
    finally:
        sys.path.remove(str(where))


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = {"FERRY_ADMIN_USERNAME": ADMIN, "FERRY_ADMIN_PASSWORD": PASSWORD}
    process = start(
        tmp_path / "data",
        port,
        "--allow-download",
        "--allow-private-networks",
        env=env,
        output=subprocess.DEVNULL,
    )
    try:
        wait_until_up(port, process)
        yield f"http://127.0.0.1:{port}", tmp_path / "data"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)


def until(probe, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = probe()
        if answer:
            return answer
        time.sleep(0.1)
    raise AssertionError("timed out")


def logged_in(ferry_client, base):
    from ferry_client.api.auth import login
    from ferry_client.models import LoginRequest

    answer = login.sync(
        client=ferry_client.Client(base_url=base), body=LoginRequest(user=ADMIN, password=PASSWORD)
    )
    assert answer.data.me.username == ADMIN
    return ferry_client.AuthenticatedClient(base_url=base, token=answer.data.auth_token)


def test_generated_client_downloads_a_file_and_watches_it_finish(ferry_client, server, tmp_path):
    from ferry_client.api.downloads import get_download
    from ferry_client.api.files import browse, get_file_content, list_files
    from ferry_client.models import DownloadStarted

    base, data = server
    client = logged_in(ferry_client, base)
    body = pattern_bytes(300_000)
    with RemoteServer() as remote:
        url = remote.file("/reports/q3.bin", body)
        started = browse.sync("incoming", client=client, download=url)
        assert isinstance(started, DownloadStarted), started
        assert started.success and started.path == "incoming/q3.bin"

        def finished():
            download = get_download.sync(started.download_id, client=client).download
            return download if download.status.value in ("completed", "failed") else None

        download = until(finished)
    assert download.status.value == "completed", download.message
    assert download.total_bytes == len(body)
    listing = list_files.sync(client=client, path="incoming")
    assert [(entry.name, entry.size) for entry in listing.entries] == [("q3.bin", len(body))]
    fetched = get_file_content.sync(client=client, path="incoming/q3.bin")
    assert fetched.payload.read() == body


def test_generated_client_calls_every_download_operation_of_the_clean_face(
    ferry_client, server, tmp_path
):
    """Start a batch, list the active ones, pause, resume, cancel, read the history, list
    the folder and read a file: every JSON-only download and file operation."""
    from ferry_client.api.downloads import (
        cancel_download,
        get_download,
        list_active_downloads,
        list_download_history,
        pause_download,
        resume_download,
        start_downloads,
    )
    from ferry_client.api.files import get_file_content, list_files
    from ferry_client.models import (
        ActiveDownloads,
        DownloadBatchRequest,
        DownloadBatchRequestItemsItem,
        DownloadEnvelope,
        DownloadStatus,
        ResumedDownload,
    )

    base, _ = server
    client = logged_in(ferry_client, base)
    quick = pattern_bytes(200_000)
    with RemoteServer() as remote:
        # Slow enough to be caught running, paused and resumed by range.
        slow_url = remote.ranged("/big.bin", 2_000_000, pause=0.05, validators=[("ETag", '"v1"')])
        batch = start_downloads.sync(
            client=client,
            body=DownloadBatchRequest(
                items=[
                    DownloadBatchRequestItemsItem(url=slow_url, directory="batch"),
                    DownloadBatchRequestItemsItem(
                        url=remote.file("/quick.bin", quick), directory="batch"
                    ),
                    DownloadBatchRequestItemsItem(url="ftp://example.test/x", directory="batch"),
                ]
            ),
        )
        slow, fast, refused = batch.downloads
        assert slow.success and fast.success and not refused.success
        assert refused.error == "INVALID_URL"

        def running():
            active = list_active_downloads.sync(client=client)
            assert isinstance(active, ActiveDownloads)
            statuses = {d.id: d.status for d in active.downloads}
            return statuses.get(slow.download_id) == DownloadStatus.DOWNLOADING

        until(running)
        paused = pause_download.sync(slow.download_id, client=client)
        assert isinstance(paused, DownloadEnvelope)
        assert paused.download.status == DownloadStatus.PAUSED
        resumed = resume_download.sync(slow.download_id, client=client)
        assert isinstance(resumed, ResumedDownload) and not resumed.restarted
        cancelled = cancel_download.sync(slow.download_id, client=client)
        assert isinstance(cancelled, DownloadEnvelope)
        assert cancelled.download.status == DownloadStatus.CANCELLED

        def quick_done():
            download = get_download.sync(fast.download_id, client=client).download
            return download.status == DownloadStatus.COMPLETED

        until(quick_done)
    history = list_download_history.sync(client=client, count=10)
    finished = {d.id: d.status for d in history.history}
    assert finished[slow.download_id] == DownloadStatus.CANCELLED
    assert finished[fast.download_id] == DownloadStatus.COMPLETED
    assert [e.name for e in list_files.sync(client=client, path="batch").entries] == ["quick.bin"]
    fetched = get_file_content.sync(client=client, path="batch/quick.bin")
    assert fetched.payload.read() == quick


def test_generated_client_runs_a_csv_import_end_to_end(ferry_client, server, tmp_path):
    from ferry_client.api.import_ import (
        get_import_file_data,
        get_import_progress,
        start_import,
        upload_import_file,
    )
    from ferry_client.api.workspace import group_history, list_all_groups, list_channels
    from ferry_client.models import (
        ImportFileData,
        SelectionPartType0,
        StartImportBody,
        StartImportBodyInput,
        UploadImportFileRequest,
    )

    base, _ = server
    client = logged_in(ferry_client, base)
    export = csv_export(tmp_path)
    uploaded = upload_import_file.sync(
        client=client,
        body=UploadImportFileRequest(
            binary_content=base64.b64encode(export.read_bytes()).decode(),
            content_type="application/zip",
            file_name=export.name,
            importer_key="csv",
        ),
    )
    assert uploaded.success

    def prepared():
        answer = get_import_file_data.sync(client=client)
        return answer if isinstance(answer, ImportFileData) else None

    selection = until(prepared)
    assert selection.users and selection.channels
    everything = SelectionPartType0(all_=True)
    started = start_import.sync(
        client=client,
        body=StartImportBody(input_=StartImportBodyInput(users=everything, channels=everything)),
    )
    assert started.success

    done = until(lambda: get_import_progress.sync(client=client).step.value == "importer_done")
    assert done
    # The export's first room, a private group, holds its one message.
    assert "imported-csv-channel" in [
        room.name for room in list_channels.sync(client=client).channels
    ]
    # The admin is in none of the imported groups: every group is groups.listAll.
    group = next(
        g for g in list_all_groups.sync(client=client).groups if g.name == "imported-csv-group"
    )
    texts = [m.msg for m in group_history.sync(client=client, room_id=group.field_id).messages]
    assert texts == ["hello, room"]


def test_generated_client_streams_an_export_as_multipart(ferry_client, server, tmp_path):
    """uploadImportFile's second body, multipart with the file as a part, works through
    the same generated function as the base64 JSON body."""
    from ferry_client.api.import_ import get_import_file_data, upload_import_file
    from ferry_client.models import ImportFileData, UploadImportFileFilesBody
    from ferry_client.types import File

    base, _ = server
    client = logged_in(ferry_client, base)
    export = csv_export(tmp_path)
    with export.open("rb") as payload:
        uploaded = upload_import_file.sync(
            client=client,
            body=UploadImportFileFilesBody(
                file=File(payload=payload, file_name=export.name, mime_type="application/zip"),
                importer_key="csv",
            ),
        )
    assert uploaded.success

    def prepared():
        answer = get_import_file_data.sync(client=client)
        return answer if isinstance(answer, ImportFileData) else None

    assert "billy.bob" in [user.username for user in until(prepared).users]
