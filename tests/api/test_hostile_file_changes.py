"""Path battery for the verbs that change the tree: PUT, POST ?mkdir= / ?move=, MKCOL,
MOVE (source and `Destination`) and DELETE, each with every hostile name.

Nothing outside the data root may be written, removed or read back, the secret outside
stays, and whatever the server made lies inside the file root.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.api.test_hostile_paths import (
    SECRET,
    assert_everything_made_stays_in_place,
    names,
    snapshot,
    url_forms,
    world,  # noqa: F401 - the fixture
)


@pytest.mark.slow
def test_hostile_names_never_change_anything_outside_the_data_root(world):  # noqa: F811
    app, client, admin, _remote, tmp_path, outside = world
    data_root = app.services.config.data_dir
    victim = app.services.config.files_dir / "sub" / "victim.txt"
    before = snapshot(tmp_path, data_root)
    failures: list[tuple] = []

    def check(case: str, response) -> None:
        if SECRET in response.content or response.status_code >= 500:
            failures.append((case, response.status_code, response.content[:200]))

    for name in names(outside):
        for form in url_forms(name):
            victim.write_bytes(b"victim")
            check(f"PUT {name!r}", client.put(f"/{form}", content=b"x", headers=admin.headers))
            check(f"mkdir {name!r}", client.post(f"/{form}?mkdir=", headers=admin.headers))
            check(f"MKCOL {name!r}", client.request("MKCOL", f"/{form}", headers=admin.headers))
            moved_to = client.request(
                "MOVE", "/sub/victim.txt", headers={**admin.headers, "Destination": f"/{form}"}
            )
            check(f"MOVE to {name!r}", moved_to)
            victim.write_bytes(b"victim")
            by_post = client.post(
                f"/sub/victim.txt?move={quote(name.encode('utf-8', 'surrogatepass'), safe='')}",
                headers=admin.headers,
            )
            check(f"?move= {name!r}", by_post)
            moved_from = client.request(
                "MOVE", f"/{form}", headers={**admin.headers, "Destination": "/sub/moved"}
            )
            check(f"MOVE from {name!r}", moved_from)
            deleted = client.delete(f"/{form}?recursive=true", headers=admin.headers)
            check(f"DELETE {name!r}", deleted)
            assert (outside / "secret.txt").read_bytes() == SECRET, name

    after = snapshot(tmp_path, data_root)
    changed = {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}
    assert changed == set()
    assert failures == []
    assert_everything_made_stays_in_place(app)
