"""An upload's disk writes happen off the event loop: other requests are answered while
one is stuck writing."""

import threading

import pytest

from ferry.files.edits import Upload

# Only a safety net, so that a regression fails instead of hanging the suite.
GIVE_UP_SECONDS = 30


@pytest.fixture
def stalled_writes(monkeypatch):
    """Upload.write waits until `release` is set; `started` tells that one is waiting,
    and `released_in_order` whether the release (not the give-up) let it go on."""
    started, release = threading.Event(), threading.Event()
    outcomes: list[bool] = []
    original = Upload.write

    def stalled(self, chunk):
        started.set()
        outcomes.append(release.wait(GIVE_UP_SECONDS))
        return original(self, chunk)

    monkeypatch.setattr(Upload, "write", stalled)
    return started, release, outcomes


def test_a_request_is_answered_while_an_upload_is_writing(client, admin, files_dir, stalled_writes):
    started, release, outcomes = stalled_writes
    answers: dict[str, int] = {}

    def upload():
        response = client.put("/slow/big.bin", content=b"x" * 1000, headers=admin.bearer)
        answers["upload"] = response.status_code

    uploader = threading.Thread(target=upload)
    uploader.start()
    assert started.wait(GIVE_UP_SECONDS)
    # The upload's write is stuck; the event loop must still answer another request.
    answers["listing"] = client.get("/", headers=admin.bearer).status_code
    release.set()
    uploader.join(GIVE_UP_SECONDS)
    assert answers == {"listing": 200, "upload": 201}
    assert outcomes and all(outcomes), "the listing waited for the stalled write"
    assert (files_dir / "slow" / "big.bin").read_bytes() == b"x" * 1000
