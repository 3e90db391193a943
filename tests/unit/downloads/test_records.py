"""A download record's owner fields, and the view of it anyone but its owner gets."""

from __future__ import annotations

from ferry.downloads.records import Owner, owned_by, owner_fields, public_view, without_secrets
from storage.downloads import LOCAL_KEY

SIGNED = (
    "https://bucket.example.test/report.pdf?X-Amz-Signature=abc123def"
    "&X-Amz-Credential=AKIAEXAMPLE&api_key=k3y-value&token=t0k3n&page=2"
)


def record(**fields) -> dict:
    return {"id": "d1", "url": SIGNED, "status": "failed", LOCAL_KEY: {"tag": "x"}, **fields}


def test_a_record_names_its_owner_and_a_record_without_one_is_owned_by_nobody():
    owned = public_view(record(**owner_fields(Owner.of({"_id": "u1", "username": "ann"}))))
    assert (owned["owner_id"], owned["owner_username"]) == ("u1", "ann")
    assert owned_by(owned, "u1") and not owned_by(owned, "u2")

    # Written before downloads had owners: no field at all.
    legacy = public_view(record())
    assert (legacy["owner_id"], legacy["owner_username"]) == (None, None)
    assert LOCAL_KEY not in legacy
    assert not owned_by(legacy, "u1")
    assert not owned_by(legacy, None)


def test_others_see_the_url_and_the_message_without_secrets():
    message = f"bucket.example.test answered HTTP 403 Forbidden for {SIGNED}"
    shown = without_secrets(public_view(record(message=message)))
    for secret in ("abc123def", "AKIAEXAMPLE", "k3y-value", "t0k3n"):
        assert secret not in shown["url"] and secret not in shown["message"]
    assert shown["url"].startswith("https://bucket.example.test/report.pdf?")
    assert "X-Amz-Signature=***" in shown["url"] and "page=2" in shown["url"]
    assert shown["message"].startswith("bucket.example.test answered HTTP 403 Forbidden for ")
    # The owner's record itself is untouched.
    assert record()["url"] == SIGNED


def test_a_record_without_a_message_keeps_none():
    assert without_secrets(public_view(record(message=None)))["message"] is None
