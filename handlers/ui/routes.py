"""The pages: sign in and out, files, downloads. Each view calls the services as the JSON
handlers do, and shows a domain error with the code and message the API would answer."""

from __future__ import annotations

import mimetypes
import os
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from ferry.kernel.errors import FerryError, InvalidInput
from handlers.client_address import client_address
from handlers.events import event_stream
from handlers.response_headers import served_file_headers
from handlers.ui import admin, file_actions, imports, resumable, uploads
from handlers.ui.web import (
    PAGE_HEADERS,
    PREFIX,
    error_of,
    redirect,
    render,
    services_of,
    signed_in,
    user_of,
)

SORT_KEYS = {
    "name": lambda entry: (entry.type != "directory", entry.name.casefold()),
    "size": lambda entry: (entry.type != "directory", entry.size),
    "modified": lambda entry: (entry.type != "directory", entry.modified),
}
FINISHED_FILTERS = ("completed", "failed", "cancelled")


async def home(request: Request):
    return redirect(PREFIX + "/files/")


def _safe_next(target: str | None) -> str:
    # Only a path of this page: never another origin.
    if target and target.startswith(PREFIX + "/") and not target.startswith("//"):
        return target
    return PREFIX + "/files/"


async def login(request: Request):
    sessions = request.app.state.sessions
    next_page = _safe_next(request.query_params.get("next"))
    if request.method == "GET":
        if sessions.user_of(request) is not None:
            return redirect(next_page)
        return render(request, "login.html", next_page=next_page)
    form = await request.form()
    next_page = _safe_next(form.get("next"))
    services = services_of(request)
    address = client_address(
        request.client.host if request.client else None,
        request.headers.getlist("x-forwarded-for"),
        services.config.trusted_proxies,
    )
    try:
        _user, token = services.accounts.login(
            str(form.get("username", "")), str(form.get("password", "")), address
        )
    except FerryError as exc:
        status, code, message = error_of(exc)
        return render(
            request,
            "login.html",
            status=status,
            next_page=next_page,
            username=form.get("username", ""),
            error={"code": code, "message": message},
        )
    response = redirect(next_page)
    sessions.set_cookie(response, request, token, services.config.token_ttl)
    return response


@signed_in
async def logout(request: Request):
    services_of(request).accounts.logout(request.state.session[1])
    response = redirect(PREFIX + "/login")
    request.app.state.sessions.clear_cookie(response, request)
    return response


def _crumbs(display: str) -> list[tuple[str, str]]:
    crumbs, walked = [], ""
    for part in [p for p in display.split("/") if p]:
        walked = f"{walked}{quote(part)}/"
        crumbs.append((part, f"{PREFIX}/files/{walked}"))
    return crumbs


@signed_in
async def files(request: Request):
    services = services_of(request)
    services.accounts.authorize(user_of(request), "view-files")
    raw = request.path_params.get("path", "")
    tree = services.files
    target = tree.resolve(raw)
    if not target.is_dir():
        return redirect(f"{PREFIX}/raw/{quote(raw)}")
    sort = request.query_params.get("sort", "name")
    sort = sort if sort in SORT_KEYS else "name"
    descending = request.query_params.get("order") == "desc"
    entries = sorted(tree.listing(target), key=SORT_KEYS[sort], reverse=descending)
    display = tree.display_path(target).strip("/")
    here = f"{PREFIX}/files/" + "".join(f"{quote(p)}/" for p in display.split("/") if p)
    return render(
        request,
        "files.html",
        entries=entries,
        crumbs=_crumbs(display),
        folder=display,
        here=here,
        raw_base=f"{PREFIX}/raw/" + "".join(f"{quote(p)}/" for p in display.split("/") if p),
        sort=sort,
        descending=descending,
        allow_download=services.config.allow_download,
    )


@signed_in
async def raw_file(request: Request):
    services = services_of(request)
    services.accounts.authorize(user_of(request), "view-files")
    target = services.files.resolve(request.path_params["path"])
    if target.is_dir():
        return redirect(f"{PREFIX}/files/{quote(request.path_params['path'])}/")
    media_type = mimetypes.guess_type(target.name)[0]
    attachment = request.query_params.get("download") is not None
    headers = served_file_headers(target.name, media_type, attachment=attachment)
    headers = {**PAGE_HEADERS, **headers}
    return FileResponse(target, stat_result=os.stat(target), media_type=media_type, headers=headers)


def _positive_int(value, field: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{field} must be a whole number.") from None
    if number < 1:
        raise InvalidInput(f"{field} must be at least 1.")
    return number


@signed_in
async def start_download(request: Request):
    form = request.state.form
    services = services_of(request)
    services.transfers.start(
        user_of(request),
        str(form.get("folder", "")),
        str(form.get("url", "")).strip(),
        filename=str(form.get("filename", "")).strip() or None,
        timeout=_positive_int(form.get("timeout"), "Timeout"),
        checksum=str(form.get("checksum", "")).strip() or None,
    )
    return redirect(PREFIX + "/downloads")


@signed_in
async def downloads(request: Request):
    services = services_of(request)
    user = user_of(request)
    # Taken before the lists are read: the page's stream replays what happens between,
    # so a download that ends before the stream connects still reloads the page.
    seen = services.events.last_id
    shown = request.query_params.get("status")
    history = services.transfers.history(user)
    if shown in FINISHED_FILTERS:
        history = [record for record in history if record.get("status") == shown]
    return render(
        request,
        "downloads.html",
        active=services.transfers.active(user),
        history=history,
        shown=shown if shown in FINISHED_FILTERS else None,
        filters=FINISHED_FILTERS,
        live=f"{PREFIX}/events?after={seen}",
        allow_download=services.config.allow_download,
    )


@signed_in
async def cancel_download(request: Request):
    services_of(request).transfers.cancel(user_of(request), request.path_params["id"])
    return redirect(PREFIX + "/downloads")


@signed_in
async def pause_download(request: Request):
    services_of(request).transfers.pause(user_of(request), request.path_params["id"])
    return redirect(PREFIX + "/downloads")


@signed_in
async def resume_download(request: Request):
    services_of(request).transfers.resume(user_of(request), request.path_params["id"])
    return redirect(PREFIX + "/downloads")


@signed_in
async def live_events(request: Request) -> Response:
    """The API's event stream for the signed-in browser: EventSource cannot send a token
    header, so the session cookie (sent to /ui only) stands in for it, for reading."""
    user, token = request.state.session
    # EventSource sends Last-Event-ID when it reconnects; the page names where it began.
    header = request.headers.get("last-event-id", "").strip()
    begun = request.query_params.get("after", "").strip()
    chosen = header or begun
    after = int(chosen) if chosen.isdigit() and len(chosen) < 19 else None
    return event_stream(services_of(request), token, user, after, None)


ROUTES = [
    Route(PREFIX, home),
    Route(PREFIX + "/", home),
    Route(PREFIX + "/login", login, methods=["GET", "POST"]),
    Route(PREFIX + "/logout", logout, methods=["POST"]),
    Route(PREFIX + "/files/", files),
    Route(PREFIX + "/files/{path:path}", files),
    Route(PREFIX + "/raw/{path:path}", raw_file),
    Route(PREFIX + "/downloads", downloads),
    Route(PREFIX + "/events", live_events),
    Route(PREFIX + "/downloads/start", start_download, methods=["POST"]),
    Route(PREFIX + "/downloads/{id}/cancel", cancel_download, methods=["POST"]),
    Route(PREFIX + "/downloads/{id}/pause", pause_download, methods=["POST"]),
    Route(PREFIX + "/downloads/{id}/resume", resume_download, methods=["POST"]),
    *file_actions.ROUTES,
    *uploads.ROUTES,
    *resumable.ROUTES,
    *admin.ROUTES,
    *imports.ROUTES,
]
