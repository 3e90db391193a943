"""subscriptions.get and rooms.get as Rocket.Chat clients read them, and /api/v1/info.

The workspace is test_room_access's: Ann and Bo share a private group and a
direct-message room; Cy is only in the public channel.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from tests.api.test_room_access import team  # noqa: F401  (the shared workspace fixture)
from tests.support.envelope import assert_error


def _get(client, caller, path):
    return client.get(path, headers=caller.headers)


def test_subscriptions_are_one_per_room_the_caller_is_a_member_of(team):  # noqa: F811
    app, client, who = team
    ann = _get(client, who["ann"], "/api/v1/subscriptions.get").json()
    assert ann["success"] is True and ann["remove"] == []
    assert sorted(s["t"] for s in ann["update"]) == ["c", "d", "p"]
    for subscription in ann["update"]:
        assert subscription["u"]["username"] == "ann"
        assert subscription["open"] is True and subscription["unread"] == 0
        assert subscription["alert"] is False
    direct = next(s for s in ann["update"] if s["t"] == "d")
    assert direct["name"] == "bo"
    channel = next(s for s in ann["update"] if s["t"] == "c")
    assert channel["name"] == "general"
    cy = _get(client, who["cy"], "/api/v1/subscriptions.get").json()
    assert [s["t"] for s in cy["update"]] == ["c"]
    assert cy["update"][0]["rid"] == channel["rid"]
    assert {s["_id"] for s in cy["update"]}.isdisjoint(s["_id"] for s in ann["update"])


def test_rooms_get_lists_the_callers_rooms_and_no_others(team):  # noqa: F811
    app, client, who = team
    ann = _get(client, who["ann"], "/api/v1/rooms.get").json()
    assert sorted(r["t"] for r in ann["update"]) == ["c", "d", "p"]
    assert ann["remove"] == [] and ann["success"] is True
    subscribed = {
        s["rid"] for s in _get(client, who["ann"], "/api/v1/subscriptions.get").json()["update"]
    }
    assert {r["_id"] for r in ann["update"]} == subscribed
    cy = _get(client, who["cy"], "/api/v1/rooms.get").json()
    assert [r["t"] for r in cy["update"]] == ["c"]
    for room in ann["update"]:
        assert "_importFile" not in (room.get("lastMessage") or {})


def test_updated_since_keeps_only_later_changes_and_refuses_a_non_date(team):  # noqa: F811
    app, client, who = team
    ann = who["ann"]
    for endpoint in ("rooms.get", "subscriptions.get"):
        later = _get(client, ann, f"/api/v1/{endpoint}?updatedSince=2999-01-01T00:00:00Z")
        assert later.json()["update"] == []
        earlier = _get(client, ann, f"/api/v1/{endpoint}?updatedSince=1970-01-02T00:00:00Z")
        assert len(earlier.json()["update"]) == 3
        refused = assert_error(_get(client, ann, f"/api/v1/{endpoint}?updatedSince=yesterday"), 400)
        assert refused["errorType"] == "error-invalid-params"


def test_subscriptions_need_a_login(team):  # noqa: F811
    app, client, who = team
    for endpoint in ("rooms.get", "subscriptions.get"):
        assert client.get(f"/api/v1/{endpoint}").status_code == 401


def test_v1_info_reports_the_package_version_publicly(team):  # noqa: F811
    app, client, who = team
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    version = pyproject["project"]["version"]
    assert client.get("/api/v1/info").json() == {"info": {"version": version}, "success": True}
    assert client.get("/api/info").json()["version"] == version
