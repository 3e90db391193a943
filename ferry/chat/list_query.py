"""Rocket.Chat's list habits, parsed once for every list endpoint.

    offset, count = page_window(offset, count)       # count 0: all, up to MAX_COUNT
    query = ListQuery.parse(ROOM_LIST, sort=..., query=..., fields=...)
    page, total = query.page(rooms, offset, count)    # filtered, sorted, paged, projected

`sort`, `query` and `fields` are the JSON texts Rocket.Chat's parseJsonQuery reads,
reduced to what is safe to run over in-memory records:

- `sort`: up to three of the list's sortable fields, each `1` or `-1`;
- `query`: fields of the list's queryable set, each equal to a JSON scalar (an array
  field matches when it holds it), `{"$in": [scalars]}`, or, on text fields,
  `{"$regex": ..., "$options": "i"}` where the pattern is text with `.`, `.*`, a
  leading `^` and a trailing `$` (escaped characters are text): a pattern that
  cannot backtrack, so no request can make the server spin;
- `fields`: `{"name": 1, ...}` keeps only those, `{"lastMessage": 0, ...}` drops
  those; either way the fields every item of the list carries (`ListFields.always`,
  `_id` among them) stay.

Anything else answers Rocket.Chat's `error-invalid-sort`, `error-invalid-query` or
`error-invalid-fields`. Filters and sorts see a record as the caller is shown it, so
they never reveal a field the caller could not read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ferry.kernel.errors import MeteorError

# The most items one page holds; `count=0` asks for this many, a larger count is clamped.
MAX_COUNT = 1000
_MAX_SORT_FIELDS = 3
_MAX_IN_VALUES = 100
_MAX_PATTERN = 128
_SCALARS = (str, int, float, bool, type(None))


class InvalidListFilter(MeteorError):
    """A `sort`, `query` or `fields` that is not what parseJsonQuery accepts."""

    def __init__(self, parameter: str, why: str):
        super().__init__(
            f"error-invalid-{parameter}",
            f"Invalid {parameter} parameter provided: {why}",
            {"helperMethod": "parseJsonQuery"},
        )


class InvalidPaging(MeteorError):
    def __init__(self):
        super().__init__("error-invalid-params", "offset and count must be non-negative integers")


def page_window(offset: Any, count: Any, maximum: int = MAX_COUNT) -> tuple[int, int]:
    """`(offset, count)` as Rocket.Chat's getPaginationItems reads them: `count=0` means
    everything up to `maximum`, a larger count is clamped to it."""
    try:
        offset, count = int(offset), int(count)
    except (TypeError, ValueError):
        raise InvalidPaging() from None
    if offset < 0 or count < 0:
        raise InvalidPaging()
    return offset, maximum if count == 0 else min(count, maximum)


@dataclass(frozen=True)
class ListFields:
    """What one list lets clients sort by, filter on, and search as text, and the
    fields each of its items always carries (`fields` keeps them: clients and the
    spec rely on them)."""

    sortable: tuple[str, ...]
    queryable: tuple[str, ...]
    searchable: tuple[str, ...]
    always: tuple[str, ...] = ("_id",)


ROOM_LIST = ListFields(
    sortable=("name", "fname", "ts", "lm", "_updatedAt", "msgs", "usersCount"),
    queryable=(
        "_id",
        "name",
        "fname",
        "t",
        "archived",
        "ro",
        "default",
        "topic",
        "description",
        "usersCount",
        "msgs",
        "usernames",
    ),
    searchable=("name", "fname", "topic", "description"),
    always=("_id", "t"),
)
USER_LIST = ListFields(
    sortable=("username", "name", "createdAt", "_updatedAt", "active", "type"),
    queryable=("_id", "username", "name", "active", "type", "status", "roles"),
    searchable=("username", "name"),
    always=("_id", "username", "active", "type"),
)
MEMBER_LIST = ListFields(
    sortable=("username", "name"),
    queryable=("_id", "username", "name", "status"),
    searchable=("username", "name"),
    always=("_id", "status"),
)
# A room's history is kept in time order: it sorts by `ts` alone, either way.
HISTORY_LIST = ListFields(sortable=("ts",), queryable=(), searchable=())
MESSAGE_LIST = ListFields(
    sortable=("ts", "tlm", "tcount", "_updatedAt"),
    queryable=("_id", "t", "pinned", "tcount"),
    searchable=("msg",),
    always=("_id", "rid", "msg", "ts", "u"),
)


def _json_object(parameter: str, text: Any) -> dict:
    try:
        value = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        raise InvalidListFilter(parameter, "it is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidListFilter(parameter, "it must be a JSON object")
    return value


def _sort_key(value: Any) -> tuple:
    # Missing fields sort first, as MongoDB sorts them; then numbers, text, the rest.
    if value is None:
        return (0,)
    if isinstance(value, bool):
        return (3, value)
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (4, json.dumps(value, sort_keys=True, default=str))


# --- $regex, reduced to patterns that cannot backtrack -------------------------------


def _text_pattern(pattern: Any, options: Any) -> Callable[[Any], bool]:
    """A matcher for `pattern`: fixed-length pieces (text and `.`) joined by `.*`.

    Each piece is searched for after the previous one ended; for fixed-length pieces
    the leftmost place is always the best, so the match takes linear passes, never
    backtracking."""
    if not isinstance(pattern, str) or len(pattern) > _MAX_PATTERN:
        raise InvalidListFilter("query", f"$regex takes text of at most {_MAX_PATTERN} characters")
    if options not in (None, "", "i"):
        raise InvalidListFilter("query", '$options may only be "i"')
    at_start = pattern.startswith("^")
    at_end = pattern.endswith("$") and not pattern.endswith("\\$")
    body = pattern[int(at_start) : len(pattern) - int(at_end)]
    pieces: list[list[str]] = [[]]
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body) and not body[i + 1].isalnum():
            pieces[-1].append(re.escape(body[i + 1]))
            i += 2
        elif body.startswith(".*", i):
            pieces.append([])
            i += 2
        elif char == ".":
            pieces[-1].append(".")
            i += 1
        elif char in "\\^$*+?()[]{}|":
            raise InvalidListFilter(
                "query", "$regex takes text with '.', '.*', a leading '^' and a trailing '$'"
            )
        else:
            pieces[-1].append(re.escape(char))
            i += 1
    flags = re.DOTALL | (re.IGNORECASE if options == "i" else 0)
    compiled = [(re.compile("".join(piece), flags), len(piece)) for piece in pieces]

    def matches(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        position = 0
        for index, (piece, length) in enumerate(compiled):
            if index == len(compiled) - 1 and at_end:
                start = len(value) - length
                if start < position or (index == 0 and at_start and start != 0):
                    return False
                return piece.fullmatch(value, start) is not None
            if index == 0 and at_start:
                found = piece.match(value, 0)
            else:
                found = piece.search(value, position)
            if found is None:
                return False
            position = found.end()
        return True

    return matches


# --- the parsed query ---------------------------------------------------------------


def _scalar(value: Any) -> bool:
    return isinstance(value, _SCALARS)


def _equals(wanted: Any) -> Callable[[Any], bool]:
    def matches(value: Any) -> bool:
        if isinstance(value, list):
            return wanted in value
        return (
            value == wanted
            and type(value) is type(wanted)
            or (_number(value) and _number(wanted) and value == wanted)
        )

    return matches


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _one_of(choices: list) -> Callable[[Any], bool]:
    tests = [_equals(choice) for choice in choices]
    return lambda value: any(test(value) for test in tests)


def _condition(fields: ListFields, field: Any, spec: Any) -> Callable[[Any], bool]:
    if field not in fields.queryable:
        raise InvalidListFilter("query", f"this list is filtered on {', '.join(fields.queryable)}")
    if _scalar(spec):
        return _equals(spec)
    if isinstance(spec, dict) and set(spec) == {"$in"}:
        choices = spec["$in"]
        if (
            not isinstance(choices, list)
            or len(choices) > _MAX_IN_VALUES
            or not all(_scalar(c) for c in choices)
        ):
            raise InvalidListFilter("query", f"$in takes a list of up to {_MAX_IN_VALUES} values")
        return _one_of(choices)
    if isinstance(spec, dict) and "$regex" in spec and set(spec) <= {"$regex", "$options"}:
        if field not in fields.searchable:
            raise InvalidListFilter("query", f"$regex applies to {', '.join(fields.searchable)}")
        return _text_pattern(spec["$regex"], spec.get("$options"))
    raise InvalidListFilter("query", "each field takes a value, $in or $regex")


@dataclass(frozen=True)
class ListQuery:
    order: tuple[tuple[str, int], ...] = ()
    conditions: tuple[tuple[str, Callable[[Any], bool]], ...] = ()
    keep: frozenset[str] | None = None
    drop: frozenset[str] = frozenset()

    @classmethod
    def parse(
        cls, allowed: ListFields, *, sort: Any = None, query: Any = None, fields: Any = None
    ) -> ListQuery:
        """The `sort`, `query` and `fields` texts of one request to a list of `allowed`."""
        return cls(
            order=_parse_sort(allowed, sort),
            conditions=_parse_query(allowed, query),
            **_parse_fields(allowed, fields),
        )

    @property
    def filters_or_sorts(self) -> bool:
        return bool(self.order or self.conditions)

    def matches(self, item: dict) -> bool:
        return all(test(item.get(field)) for field, test in self.conditions)

    def arrange(self, items: Iterable[dict]) -> list[dict]:
        """The items that match, in the asked order (stable: ties keep their order)."""
        chosen = [item for item in items if self.matches(item)]
        for field, direction in reversed(self.order):
            chosen.sort(key=lambda item, f=field: _sort_key(item.get(f)), reverse=direction < 0)
        return chosen

    def project(self, item: dict) -> dict:
        if self.keep is not None:
            return {key: value for key, value in item.items() if key in self.keep}
        if self.drop:
            return {key: value for key, value in item.items() if key not in self.drop}
        return item

    def page(self, items: Iterable[dict], offset: int, count: int) -> tuple[list[dict], int]:
        """`(page, total)`: matching items, ordered, the window at `offset`, projected."""
        chosen = self.arrange(items)
        return [self.project(item) for item in chosen[offset : offset + count]], len(chosen)


def _parse_sort(fields: ListFields, text: Any) -> tuple[tuple[str, int], ...]:
    if text is None or text == "":
        return ()
    order = _json_object("sort", text)
    if len(order) > _MAX_SORT_FIELDS:
        raise InvalidListFilter("sort", f"at most {_MAX_SORT_FIELDS} fields")
    for field, direction in order.items():
        if field not in fields.sortable:
            raise InvalidListFilter("sort", f"this list sorts by {', '.join(fields.sortable)}")
        if isinstance(direction, bool) or direction not in (1, -1):
            raise InvalidListFilter("sort", "each field takes 1 or -1")
    return tuple(order.items())


def _parse_query(fields: ListFields, text: Any) -> tuple[tuple[str, Callable], ...]:
    if text is None or text == "":
        return ()
    wanted = _json_object("query", text)
    return tuple((field, _condition(fields, field, spec)) for field, spec in wanted.items())


def _parse_fields(fields: ListFields, text: Any) -> dict[str, Any]:
    if text is None or text == "":
        return {}
    wanted = _json_object("fields", text)
    values = set()
    for field, flag in wanted.items():
        if not field or field.startswith("$") or len(field) > 64:
            raise InvalidListFilter("fields", "field names are plain names")
        if flag not in (0, 1) or isinstance(flag, float):
            raise InvalidListFilter("fields", "each field takes 1 (keep) or 0 (leave out)")
        if field != "_id":
            values.add(int(flag))
    if len(values) > 1:
        raise InvalidListFilter("fields", "keep fields or leave them out, not both")
    if values == {1} or (not values and wanted.get("_id") == 1):
        keep = {field for field, flag in wanted.items() if flag}
        return {"keep": frozenset(keep | set(fields.always))}
    dropped = {field for field, flag in wanted.items() if not flag}
    return {"drop": frozenset(dropped - set(fields.always))}
