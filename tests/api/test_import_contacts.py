"""The omnichannel contacts of a CSV export (`contacts.csv`), imported as Rocket.Chat's
contact importer imports them and read through `omnichannel/contacts.*`."""

from __future__ import annotations

from tests.api.test_import_api import FIXTURES, prepared, state_is, upload, wait_for
from tests.support.importers import build_zip

CONTACTS = (
    "name,emails,phones,manager,id,company\n"
    'Dana Client,dana@client.example;dana@home.example,"+15550100",billy.bob,c-dana,Acme\n'
    ",,+15550199,,,\n"
    "Eve Buyer,eve@buyer.example,,nobody,c-eve,\n"
    ",,,,c-empty,Ghost Inc\n"
)


def export(tmp_path):
    return build_zip(
        tmp_path / "export.zip",
        {
            "users.csv": (FIXTURES / "csv_import_users.csv").read_text(),
            "contacts.csv": CONTACTS,
        },
    )


def start(client, admin, contacts: dict) -> dict:
    body = {"input": {"users": {"all": True}, "contacts": contacts}}
    assert client.post("/api/v1/startImport", headers=admin.headers, json=body).json() == {
        "success": True
    }
    return wait_for(client, admin, state_is("done", "error"))


def test_contacts_are_selected_imported_and_searched(importing, tmp_path):
    app, client, admin, _ = importing
    upload(client, admin, export(tmp_path))
    selection = prepared(client, admin)
    assert selection["contacts"] == [
        {"id": "c-dana", "name": "Dana Client", "do_import": True,
         "emails": ["dana@client.example", "dana@home.example"], "phones": ["+15550100"]},
        {"id": selection["contacts"][1]["id"], "name": "", "emails": [], "phones": ["+15550199"],
         "do_import": True},
        {"id": "c-eve", "name": "Eve Buyer", "emails": ["eve@buyer.example"], "phones": [],
         "do_import": True},
    ]  # fmt: skip
    operation = app.services.imports.current_operation()
    assert operation["count"]["contacts"] == 3
    assert "contacts.csv:5: no name, email or phone; row skipped." in operation["warnings"]

    done = start(client, admin, {"list": ["c-dana", selection["contacts"][1]["id"]]})
    report = done["operation"]["report"]
    assert (report["contacts_created"], report["contacts_skipped"]) == (2, 1)

    found = client.get("/api/v1/omnichannel/contacts.search", headers=admin.headers).json()
    assert (found["total"], found["count"], found["offset"]) == (2, 2, 0)
    dana, guest = found["contacts"]
    billy = client.get("/api/v1/users.info?username=billy.bob", headers=admin.headers).json()
    assert dana == {
        "_id": dana["_id"],
        "name": "Dana Client",
        "emails": [{"address": "dana@client.example"}, {"address": "dana@home.example"}],
        "phones": [{"phoneNumber": "+15550100"}],
        "contactManager": {
            "_id": billy["user"]["_id"],
            "username": "billy.bob",
            "name": "Billy Bob Jr.",
        },
        "unknown": False,
        "channels": [],
        "customFields": {"company": "Acme"},
        "createdAt": dana["createdAt"],
        "_updatedAt": dana["_updatedAt"],
    }
    assert guest["name"] == "guest-1" and guest["phones"] == [{"phoneNumber": "+15550199"}]
    by_phone = client.get(
        "/api/v1/omnichannel/contacts.search?searchText=HOME.example", headers=admin.headers
    ).json()
    assert [c["name"] for c in by_phone["contacts"]] == ["Dana Client"]

    one = client.get(
        f"/api/v1/omnichannel/contacts.get?contactId={dana['_id']}", headers=admin.headers
    ).json()
    assert one["contact"]["contactManager"] == billy["user"]["_id"]
    assert "importIds" not in one["contact"]
    missing = client.get("/api/v1/omnichannel/contacts.get?contactId=nope", headers=admin.headers)
    assert missing.json() == {"contact": None, "success": True}

    # Importing the same file again creates nothing new.
    upload(client, admin, export(tmp_path))
    prepared(client, admin)
    again = start(client, admin, {"all": True})["operation"]["report"]
    assert (again["contacts_created"], again["contacts_matched"]) == (1, 2)


def test_only_omnichannel_roles_read_contacts(client, make_user):
    plain = make_user("plain", ["user"])
    agent = make_user("agent", ["user", "livechat-agent"])
    for caller, status in ((plain, 403), (agent, 200)):
        answer = client.get("/api/v1/omnichannel/contacts.search", headers=caller.headers)
        assert answer.status_code == status, answer.text
    refused = client.get("/api/v1/omnichannel/contacts.get?contactId=x", headers=plain.headers)
    assert refused.json() == {
        "success": False,
        "error": "User does not have the permissions required for this action [error-unauthorized]",
    }
    assert client.get("/api/v1/omnichannel/contacts.search").status_code == 401
