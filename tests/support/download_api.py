"""Starting a download into `/dl` through the API and reading its record, as the
download API tests do."""

from __future__ import annotations

from urllib.parse import quote


def start(client, caller, url: str, **params) -> str:
    """The id of a download of `url` into `dl`, started with `params` (checksum, ...)."""
    query = f"download={quote(url, safe='')}" + "".join(
        f"&{key}={quote(str(value), safe='')}" for key, value in params.items()
    )
    response = client.get(f"/dl?{query}", headers=caller.bearer)
    assert response.status_code == 200, response.text
    return response.json()["download_id"]


def record(client, caller, download_id: str) -> dict:
    response = client.get(f"/api/v1/downloads/{download_id}", headers=caller.bearer)
    assert response.status_code == 200, response.text
    return response.json()["download"]
