"""Changing the file tree from the files page: new folder, delete (after a confirmation
page), rename or move. Each action needs the permission the JSON API asks for."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.routing import Route

from ferry.kernel.errors import InvalidInput
from handlers.ui.web import PREFIX, redirect, render, services_of, signed_in, user_of

UPLOAD_FILES = "upload-files"
DELETE_FILES = "delete-files"


def folder_page(folder: str) -> str:
    """The files page of the display path `folder`."""
    return f"{PREFIX}/files/" + "".join(f"{quote(part)}/" for part in folder.split("/") if part)


def parent_of(path: str) -> str:
    return "/".join([part for part in path.split("/") if part][:-1])


def single_name(value, what: str) -> str:
    """A name inside the current folder: not empty, no separators, not '.' or '..'."""
    name = str(value or "").strip()
    if not name:
        raise InvalidInput(f"Give the {what}'s name.")
    if "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
        raise InvalidInput(f"A {what}'s name cannot contain '/' or '\\', or be '.' or '..'.")
    return name


def joined(folder: str, name: str) -> str:
    return "/".join(part for part in (*folder.split("/"), name) if part)


def _authorize(request: Request, *permissions: str) -> None:
    accounts = services_of(request).accounts
    for permission in permissions:
        accounts.authorize(user_of(request), permission)


@signed_in
async def make_folder(request: Request):
    _authorize(request, UPLOAD_FILES)
    form = request.state.form
    folder = str(form.get("folder", ""))
    shown = services_of(request).file_edits.make_directory(
        joined(folder, single_name(form.get("name"), "folder"))
    )
    return redirect(folder_page(shown))


def _ask(request: Request, template: str):
    """The page that asks about the existing entry `?path=` before changing it."""
    entry = services_of(request).file_edits.existing(request.query_params.get("path", ""))
    shown = joined(services_of(request).files.display_path(entry.parent).strip("/"), entry.name)
    return render(
        request,
        template,
        target=shown,
        is_folder=entry.is_dir() and not entry.is_symlink(),
        back=folder_page(parent_of(shown)),
    )


@signed_in
async def delete_entry(request: Request):
    _authorize(request, DELETE_FILES)
    if request.method == "GET":
        return _ask(request, "confirm_delete.html")
    form = request.state.form
    deleted = services_of(request).file_edits.delete(
        str(form.get("path", "")), recursive=form.get("recursive") == "on"
    )
    return redirect(folder_page(parent_of(deleted)))


@signed_in
async def move_entry(request: Request):
    _authorize(request, UPLOAD_FILES, DELETE_FILES)
    if request.method == "GET":
        return _ask(request, "move.html")
    form = request.state.form
    moved = services_of(request).file_edits.move(
        str(form.get("path", "")),
        str(form.get("destination", "")).strip(),
        overwrite=form.get("overwrite") == "on",
    )
    return redirect(folder_page(parent_of(moved)))


ROUTES = [
    Route(PREFIX + "/edit/mkdir", make_folder, methods=["POST"]),
    Route(PREFIX + "/edit/delete", delete_entry, methods=["GET", "POST"]),
    Route(PREFIX + "/edit/move", move_entry, methods=["GET", "POST"]),
]
