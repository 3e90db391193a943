"""Rocket.Chat's list habits: paging, JSON sort, query and fields, parsed in one place."""

from __future__ import annotations

import pytest

from ferry.chat.list_query import (
    MAX_COUNT,
    ROOM_LIST,
    USER_LIST,
    InvalidListFilter,
    InvalidPaging,
    ListQuery,
    page_window,
)

ROOMS = [
    {"_id": "r1", "t": "c", "name": "general", "msgs": 10, "usernames": ["ann", "bo"]},
    {"_id": "r2", "t": "c", "name": "General-Talk", "msgs": 3, "topic": "chat"},
    {"_id": "r3", "t": "p", "name": "secret.plans", "msgs": 10, "archived": True},
    {"_id": "r4", "t": "c", "name": "random", "lastMessage": {"msg": "hi"}},
]


def names(items):
    return [item["name"] for item in items]


def arranged(**habits):
    return ListQuery.parse(ROOM_LIST, **habits).arrange(ROOMS)


def test_count_zero_means_the_maximum_and_larger_counts_are_clamped():
    assert page_window(0, 0) == (0, MAX_COUNT)
    assert page_window("5", str(MAX_COUNT * 10)) == (5, MAX_COUNT)
    assert page_window(0, 7) == (0, 7)
    assert page_window(0, 0, maximum=100) == (0, 100)
    for offset, count in ((-1, 5), (0, -1), ("x", 5)):
        with pytest.raises(InvalidPaging):
            page_window(offset, count)


def test_sorts_by_up_to_three_fields_missing_values_first():
    assert names(arranged(sort='{"msgs": -1, "name": 1}')) == [
        "general",
        "secret.plans",
        "General-Talk",
        "random",
    ]
    assert names(arranged(sort='{"msgs": 1}'))[0] == "random"


def test_equality_in_and_array_membership():
    assert names(arranged(query='{"t": "p"}')) == ["secret.plans"]
    assert names(arranged(query='{"msgs": {"$in": [3, 10]}, "t": "c"}')) == [
        "general",
        "General-Talk",
    ]
    assert names(arranged(query='{"usernames": "bo"}')) == ["general"]
    # true is not 1, as in MongoDB.
    assert names(arranged(query='{"archived": 1}')) == []
    assert names(arranged(query='{"archived": true}')) == ["secret.plans"]


@pytest.mark.parametrize(
    ("pattern", "options", "expected"),
    [
        ("gen", "i", ["general", "General-Talk"]),
        ("gen", "", ["general"]),
        ("^gen.*l$", "i", ["general"]),
        ("^gen.*l", "i", ["general", "General-Talk"]),
        ("^secret\\.plans$", "", ["secret.plans"]),
        ("secret.plans", "", ["secret.plans"]),
        ("^.a.d", "", ["random"]),
        ("l$", "", ["general"]),
        ("^g", "", ["general"]),
        ("^random$", "", ["random"]),
        ("a.*a.*a", "i", []),
        ("", "", ["general", "General-Talk", "secret.plans", "random"]),
    ],
)
def test_regex_takes_text_dots_wildcards_and_anchors(pattern, options, expected):
    escaped = pattern.replace("\\", "\\\\")
    query = f'{{"name": {{"$regex": "{escaped}", "$options": "{options}"}}}}'
    assert names(arranged(query=query)) == expected


def test_a_pattern_that_could_backtrack_is_refused_before_it_runs():
    for pattern in ("(a+)+$", "a*a*a*b", "[a-z]+", "a|b", "\\\\d", "a{2}", "a?"):
        with pytest.raises(InvalidListFilter) as refused:
            arranged(query=f'{{"name": {{"$regex": "{pattern}"}}}}')
        assert refused.value.error_type == "error-invalid-query"


def test_regex_only_on_text_fields_and_only_the_i_option():
    for query in (
        '{"msgs": {"$regex": "1"}}',
        '{"name": {"$regex": "a", "$options": "s"}}',
        '{"name": {"$regex": 5}}',
        '{"name": {"$ne": "a"}}',
        '{"name": {"$in": [{"a": 1}]}}',
        '{"$or": []}',
        '{"importIds": "C1"}',
    ):
        with pytest.raises(InvalidListFilter):
            arranged(query=query)


def test_fields_keep_or_leave_out_but_the_list_s_own_fields_stay():
    keep = ListQuery.parse(ROOM_LIST, fields='{"name": 1}')
    assert keep.project(ROOMS[0]) == {"_id": "r1", "t": "c", "name": "general"}
    without_id = ListQuery.parse(ROOM_LIST, fields='{"_id": 0, "name": 1}')
    assert without_id.project(ROOMS[0]) == {"_id": "r1", "t": "c", "name": "general"}
    drop = ListQuery.parse(ROOM_LIST, fields='{"lastMessage": 0, "t": 0}')
    assert drop.project(ROOMS[3]) == {"_id": "r4", "t": "c", "name": "random"}
    users = ListQuery.parse(USER_LIST, fields='{"name": 1}')
    user = {"_id": "u", "username": "ann", "name": "Ann", "active": True, "type": "user"}
    assert users.project({**user, "status": "offline"}) == user
    with pytest.raises(InvalidListFilter) as refused:
        ListQuery.parse(ROOM_LIST, fields='{"name": 1, "msgs": 0}')
    assert refused.value.error_type == "error-invalid-fields"


def test_page_filters_sorts_windows_and_projects():
    query = ListQuery.parse(
        ROOM_LIST, sort='{"name": -1}', query='{"t": "c"}', fields='{"name": 1}'
    )
    page, total = query.page(ROOMS, 1, 2)
    assert total == 3
    # By code point, as MongoDB compares: "random" > "general" > "General-Talk".
    assert page == [
        {"_id": "r1", "t": "c", "name": "general"},
        {"_id": "r2", "t": "c", "name": "General-Talk"},
    ]


@pytest.mark.parametrize("parameter", ["sort", "query", "fields"])
def test_text_that_is_not_a_json_object_is_refused(parameter):
    for text in ("{", "[1]", '"name"', "[" * 100_000):
        with pytest.raises(InvalidListFilter):
            ListQuery.parse(ROOM_LIST, **{parameter: text})
