"""chat.getMessage, chat.getThreadMessages and chat.getThreadsList as clients call them."""

from __future__ import annotations

from tests.api.threaded_workspace import get, messages_by_text, threads  # noqa: F401
from tests.support.envelope import assert_error

NOT_ALLOWED = {
    "success": False,
    "error": "Not allowed [error-not-allowed]",
    "errorType": "error-not-allowed",
}


def _refused(response) -> dict:
    assert response.status_code == 400, response.text
    return response.json()


def test_get_message_answers_a_readable_message_whole(threads):  # noqa: F811
    app, client, who = threads
    by_text = messages_by_text(client, who["admin"])
    for caller in ("ann", "cy"):
        answer = get(client, who[caller], "chat.getMessage", msgId=by_text["me too"]["_id"])
        assert answer.status_code == 200
        assert answer.json() == {"message": by_text["me too"], "success": True}
    assert by_text["me too"]["tmid"] == by_text["Who reviews the release?"]["_id"]


def test_get_message_never_tells_a_hidden_room_from_a_missing_message(threads):  # noqa: F811
    app, client, who = threads
    secret = messages_by_text(client, who["admin"])["The plan"]
    assert get(client, who["bo"], "chat.getMessage", msgId=secret["_id"]).status_code == 200
    refused = _refused(get(client, who["cy"], "chat.getMessage", msgId=secret["_id"]))
    assert refused == NOT_ALLOWED
    assert _refused(get(client, who["cy"], "chat.getMessage", msgId="no-such-id")) == NOT_ALLOWED
    assert _refused(get(client, who["cy"], "chat.getMessage")) == {
        "success": False,
        "error": 'The "msgId" query parameter must be provided.',
    }


def test_thread_messages_oldest_first_with_paging_and_sort(threads):  # noqa: F811
    app, client, who = threads
    question = messages_by_text(client, who["admin"])["Who reviews the release?"]
    answer = get(client, who["cy"], "chat.getThreadMessages", tmid=question["_id"]).json()
    assert [m["msg"] for m in answer["messages"]] == ["me", "me too"]
    assert (answer["count"], answer["offset"], answer["total"]) == (2, 0, 2)
    newest = get(
        client, who["cy"], "chat.getThreadMessages", tmid=question["_id"], sort='{"ts": -1}'
    ).json()
    assert [m["msg"] for m in newest["messages"]] == ["me too", "me"]
    page = get(
        client,
        who["cy"],
        "chat.getThreadMessages",
        tmid=question["_id"],
        offset=1,
        count=1,
        fields='{"msg": 1}',
    ).json()
    assert [m["msg"] for m in page["messages"]] == ["me too"]
    assert set(page["messages"][0]) == {"_id", "rid", "msg", "ts", "u"}
    assert page["total"] == 2


def test_thread_messages_of_an_unreadable_thread_answer_as_a_missing_one(threads):  # noqa: F811
    app, client, who = threads
    plan = messages_by_text(client, who["admin"])["The plan"]
    replies = get(client, who["bo"], "chat.getThreadMessages", tmid=plan["_id"]).json()
    assert [m["msg"] for m in replies["messages"]] == ["agreed"]
    hidden = _refused(get(client, who["cy"], "chat.getThreadMessages", tmid=plan["_id"]))
    assert hidden == NOT_ALLOWED
    assert _refused(get(client, who["cy"], "chat.getThreadMessages", tmid="nope")) == NOT_ALLOWED
    missing = assert_error(get(client, who["cy"], "chat.getThreadMessages"), 400)
    assert missing["errorType"] == "error-invalid-params"


def test_threads_list_filters_by_type_and_text(threads):  # noqa: F811
    app, client, who = threads
    general = get(client, who["admin"], "channels.info", roomName="general").json()["channel"]
    listed = get(client, who["cy"], "chat.getThreadsList", rid=general["_id"]).json()
    assert [t["msg"] for t in listed["threads"]] == ["Who reviews the release?"]
    assert listed["threads"][0]["tcount"] == 2
    assert (listed["count"], listed["offset"], listed["total"]) == (1, 0, 1)

    def texts(caller, **query):
        answer = get(client, who[caller], "chat.getThreadsList", rid=general["_id"], **query)
        return [t["msg"] for t in answer.json()["threads"]]

    assert texts("bo", type="following") == ["Who reviews the release?"]
    assert texts("ann", type="following") == []
    assert texts("ann", type="unread") == []
    assert texts("ann", type="all", text="REVIEWS") == ["Who reviews the release?"]
    assert texts("ann", text="nothing like it") == []


def test_threads_list_of_an_unreadable_room_answers_as_a_missing_one(threads):  # noqa: F811
    app, client, who = threads
    secret = get(client, who["admin"], "groups.info", roomName="secret").json()["group"]
    assert get(client, who["bo"], "chat.getThreadsList", rid=secret["_id"]).json()["total"] == 1
    hidden = _refused(get(client, who["cy"], "chat.getThreadsList", rid=secret["_id"]))
    assert hidden == NOT_ALLOWED
    assert _refused(get(client, who["cy"], "chat.getThreadsList", rid="nope")) == NOT_ALLOWED
    missing = assert_error(get(client, who["cy"], "chat.getThreadsList"), 400)
    assert missing["errorType"] == "error-room-id-param-not-provided"
