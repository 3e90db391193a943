"""The picker: which of a prepared file's users and channels to import.

A file may hold tens of thousands of users, so the page shows 50 at a time, filtered by
a search. The selection lives on the server, per browser session and operation: each
page's form sends the ids it showed and the ones ticked, and the server updates its set
before moving to another page, so a choice survives paging and searching. Start hands
the selection to the same startImport the JSON API calls.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

from ferry.kernel.errors import InvalidInput
from handlers.ui.web import PREFIX, redirect, services_of, signed_in, user_of

PAGE_SIZE = 50
KINDS = ("users", "channels")
# Sessions whose selection is kept; the oldest is dropped past this.
KEPT_SELECTIONS = 16
SEARCH_LIMIT = 200
RUN_IMPORT = "run-import"


@dataclass
class Selection:
    """One session's choice for one prepared operation."""

    operation_id: str
    rows: dict[str, list[dict]]
    chosen: dict[str, set[str]]
    contacts: int
    message_count: int
    with_contacts: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self, kind: str) -> list[str]:
        return [row["id"] for row in self.rows[kind]]


def _user_row(user: dict) -> dict:
    tags = [
        tag for tag, on in (("bot", user.get("is_bot")), ("deleted", user.get("is_deleted"))) if on
    ]
    return {
        "id": str(user["user_id"]),
        "label": user.get("username") or str(user["user_id"]),
        "detail": user.get("email") or "",
        "tags": tags,
    }


def _channel_row(channel: dict) -> dict:
    if channel.get("is_direct"):
        tags = ["every direct message"]
    else:
        tags = ["private" if channel.get("is_private") else "public"]
        if channel.get("is_archived"):
            tags.append("archived")
    return {
        "id": str(channel["channel_id"]),
        "label": channel.get("name") or str(channel["channel_id"]),
        "detail": "",
        "tags": tags,
    }


class Selections:
    """The selections of the browser sessions using the picker, newest last."""

    def __init__(self):
        self._by_session: OrderedDict[str, Selection] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: str, operation_id: str) -> Selection | None:
        with self._lock:
            found = self._by_session.get(session)
            if found is None or found.operation_id != operation_id:
                return None
            self._by_session.move_to_end(session)
            return found

    def keep(self, session: str, selection: Selection) -> Selection:
        with self._lock:
            self._by_session[session] = selection
            self._by_session.move_to_end(session)
            while len(self._by_session) > KEPT_SELECTIONS:
                self._by_session.popitem(last=False)
        return selection

    def drop(self, session: str) -> None:
        with self._lock:
            self._by_session.pop(session, None)


async def selection_for(request: Request, operation: dict) -> Selection:
    """This session's selection of `operation`, everything chosen at first (as
    Rocket.Chat ticks every record)."""
    selections: Selections = request.app.state.import_selections
    session = request.state.session[1]
    found = selections.get(session, operation["_id"])
    if found is not None:
        return found
    data = await run_in_threadpool(services_of(request).imports.file_data)
    if data.get("waiting"):
        raise InvalidInput("The file is still being prepared; wait for it to be ready.")
    rows = {
        "users": [_user_row(u) for u in data.get("users", []) if u.get("user_id") is not None],
        "channels": [
            _channel_row(c) for c in data.get("channels", []) if c.get("channel_id") is not None
        ],
    }
    return selections.keep(
        session,
        Selection(
            operation_id=operation["_id"],
            rows=rows,
            chosen={kind: {row["id"] for row in rows[kind]} for kind in KINDS},
            contacts=len(data.get("contacts") or []),
            message_count=data.get("message_count", 0),
        ),
    )


def _kind(value) -> str:
    kind = str(value or "users")
    if kind not in KINDS:
        raise InvalidInput("Choose users or channels.")
    return kind


def _page_number(value) -> int:
    try:
        return max(1, int(str(value or "1")))
    except ValueError:
        raise InvalidInput("The page must be a whole number.") from None


def _search(value) -> str:
    text = str(value or "").strip()
    if len(text) > SEARCH_LIMIT:
        raise InvalidInput(f"Search for at most {SEARCH_LIMIT} characters.")
    return text


def _matching(selection: Selection, kind: str, search: str) -> list[dict]:
    if not search:
        return selection.rows[kind]
    needle = search.casefold()
    return [
        row
        for row in selection.rows[kind]
        if needle in row["label"].casefold() or needle in row["detail"].casefold()
    ]


async def page_of(request: Request, operation: dict) -> dict:
    """What the picker shows: one page of one kind, with the search applied."""
    params = request.query_params
    kind, search = _kind(params.get("kind")), _search(params.get("q"))
    selection = await selection_for(request, operation)
    matching = _matching(selection, kind, search)
    pages = max(1, -(-len(matching) // PAGE_SIZE))
    page = min(_page_number(params.get("page")), pages)
    shown = matching[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    chosen = selection.chosen[kind]
    return {
        "kind": kind,
        "q": search,
        "page": page,
        "pages": pages,
        "matching": len(matching),
        "rows": [{**row, "checked": row["id"] in chosen} for row in shown],
        "totals": {k: len(selection.rows[k]) for k in KINDS},
        "chosen": {k: len(selection.chosen[k]) for k in KINDS},
        "contacts": selection.contacts,
        "with_contacts": selection.with_contacts,
        "message_count": selection.message_count,
    }


def _start_input(selection: Selection) -> dict:
    chosen = {}
    for kind in KINDS:
        if selection.chosen[kind] >= set(selection.ids(kind)):
            chosen[kind] = {"all": True}
        else:
            chosen[kind] = {"list": sorted(selection.chosen[kind])}
    chosen["contacts"] = {"all": selection.with_contacts}
    return chosen


def _picker_url(kind: str, search: str, page: int) -> str:
    query = {"kind": kind, "page": page}
    if search:
        query["q"] = search
    return f"{PREFIX}/imports/current?{urlencode(query)}"


@signed_in
async def pick(request: Request):
    """Keeps the ticks of the page just shown, then searches, pages, selects all or none
    of what the search matches, or starts the import."""
    services = services_of(request)
    services.accounts.authorize(user_of(request), RUN_IMPORT)
    form = request.state.form
    operation = services.imports.current_operation()
    if operation is None:
        raise InvalidInput("There is no prepared import to choose from; start a new import.")
    kind, search = _kind(form.get("kind")), _search(form.get("q"))
    page = _page_number(form.get("page"))
    selection = await selection_for(request, operation)
    action = str(form.get("action", "save"))
    with selection.lock:
        known = set(selection.ids(kind))
        ticked = {str(value) for value in form.getlist("pick")}
        for row_id in {str(value) for value in form.getlist("shown")} & known:
            if row_id in ticked:
                selection.chosen[kind].add(row_id)
            else:
                selection.chosen[kind].discard(row_id)
        if "contacts_shown" in form:
            selection.with_contacts = form.get("contacts") == "on"
        matched = {row["id"] for row in _matching(selection, kind, search)}
        if action == "all":
            selection.chosen[kind] |= matched
        elif action == "none":
            selection.chosen[kind] -= matched
        elif action == "search":
            page = 1
        elif action.startswith("page-"):
            page = _page_number(action.removeprefix("page-"))
        elif action.startswith("kind-"):
            kind, search, page = _kind(action.removeprefix("kind-")), "", 1
        elif action == "start":
            if not any(selection.chosen[k] for k in KINDS) and not (
                selection.with_contacts and selection.contacts
            ):
                raise InvalidInput("Choose at least one user or channel to import.")
            start_input = _start_input(selection)
        elif action != "save":
            raise InvalidInput(f"Unknown action '{action}'.")
    if action == "start":
        await run_in_threadpool(services.imports.start_import, user_of(request)["_id"], start_input)
        request.app.state.import_selections.drop(request.state.session[1])
        return redirect(PREFIX + "/imports/current")
    return redirect(_picker_url(kind, search, page))


ROUTES = [Route(PREFIX + "/imports/pick", pick, methods=["POST"])]
