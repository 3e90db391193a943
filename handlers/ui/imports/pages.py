"""The import wizard's pages: the importers and recent operations, a new import for one
importer, and the current operation, which shows whichever page its step calls for:
preparation, the picker, progress, or the summary."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

from ferry.chat.operations.lifecycle import import_state
from ferry.kernel.errors import NotFound
from ferry.kernel.statuses import ImportState, ImportStep
from handlers.ui.imports.picker import page_of
from handlers.ui.web import PREFIX, redirect, render, services_of, signed_in, user_of

RUN_IMPORT = "run-import"
CURRENT = PREFIX + "/imports/current"

FORMAT_NOTES = {
    "csv": "A zip of users.csv, channels.csv and one folder of messages per channel.",
    "slack": "A Slack workspace export (zip): users, channels and their messages.",
    "slack-users": "A Slack users CSV export: accounts only.",
    "hipchatenterprise": "A HipChat Enterprise export (tar.gz, optionally encrypted).",
}

STEP_WORDS = {
    ImportStep.NEW: "Starting",
    ImportStep.UPLOADING: "Receiving the file",
    ImportStep.DOWNLOADING_FILE: "Downloading the file",
    ImportStep.FILE_LOADED: "File received, waiting to be read",
    ImportStep.PREPARING_STARTED: "Reading the file",
    ImportStep.PREPARING_USERS: "Reading users",
    ImportStep.PREPARING_CHANNELS: "Reading channels",
    ImportStep.PREPARING_MESSAGES: "Reading messages",
    ImportStep.PREPARING_CONTACTS: "Reading contacts",
    ImportStep.USER_SELECTION: "Ready: choose what to import",
    ImportStep.IMPORTING_STARTED: "Import started",
    ImportStep.IMPORTING_USERS: "Importing users",
    ImportStep.IMPORTING_CHANNELS: "Importing channels",
    ImportStep.IMPORTING_MESSAGES: "Importing messages",
    ImportStep.IMPORTING_CONTACTS: "Importing contacts",
    ImportStep.IMPORTING_FILES: "Fetching files",
    ImportStep.FINISHING: "Finishing",
    ImportStep.DONE: "Done",
    ImportStep.FAILED: "Failed",
    ImportStep.CANCELLED: "Cancelled",
}

# Which page of the wizard an operation's state calls for.
PHASES = {
    ImportState.NEW: "preparing",
    ImportState.LOADING: "preparing",
    ImportState.READY: "picking",
    ImportState.IMPORTING: "importing",
}

# The report's figures, as the summary names them.
REPORT_FIGURES = (
    ("users_created", "Users created"),
    ("users_matched", "Users already here (left unchanged)"),
    ("users_skipped", "Users not selected"),
    ("rooms_created", "Rooms created"),
    ("rooms_updated", "Rooms updated"),
    ("rooms_skipped", "Rooms not selected"),
    ("messages_imported", "Messages imported"),
    ("messages_skipped", "Messages skipped"),
    ("contacts_created", "Contacts created"),
    ("contacts_matched", "Contacts already here"),
    ("errors", "Errors"),
    ("warnings", "Warnings"),
)


def importers_with_notes(request: Request) -> list[dict]:
    return [
        {**importer, "note": FORMAT_NOTES.get(importer["key"], "")}
        for importer in services_of(request).imports.visible_importers()
    ]


def allow_import(request: Request) -> None:
    services_of(request).accounts.authorize(user_of(request), RUN_IMPORT)


def phase_of(operation: dict) -> str:
    return PHASES.get(import_state(operation), "finished")


def operation_view(operation: dict) -> dict:
    """What the progress panel shows of an operation."""
    count = operation.get("count") or {}
    total, completed = count.get("total", 0), count.get("completed", 0)
    return {
        "id": operation["_id"],
        "importer": operation.get("importerKey"),
        "type": operation.get("type"),
        "step": operation["status"],
        "step_words": STEP_WORDS.get(operation["status"], operation["status"]),
        "phase": phase_of(operation),
        "cancelled": not operation.get("valid", True) and operation["status"] != ImportStep.DONE,
        "count": count,
        "total": total,
        "completed": completed,
        "errors": count.get("error", 0),
        "percent": min(100, completed * 100 // total) if total else 0,
        "error": operation.get("error"),
    }


@signed_in
async def imports_page(request: Request):
    allow_import(request)
    imports = services_of(request).imports
    current = imports.current_operation()
    return render(
        request,
        "imports.html",
        importers=importers_with_notes(request),
        current=operation_view(current) if current else None,
        recent=[
            operation_view(op) | {"updated": op.get("_updatedAt")}
            for op in imports.latest_operations()
        ],
    )


@signed_in
async def new_import(request: Request):
    allow_import(request)
    key = request.path_params["key"]
    importer = next((i for i in importers_with_notes(request) if i["key"] == key), None)
    if importer is None:
        raise NotFound(f"There is no importer '{key}'; choose one of the list.")
    config = services_of(request).config
    return render(
        request,
        "import_new.html",
        importer=importer,
        max_upload_size=config.max_upload_size,
        import_folder=config.import_folder is not None,
    )


def _summary(request: Request, operation: dict) -> dict:
    report = operation.get("report") or {}
    figures = [(label, report[key]) for key, label in REPORT_FIGURES if report.get(key)]
    return {
        "figures": figures,
        "warnings": operation.get("warnings") or [],
        "error_samples": report.get("error_samples") or [],
        "waiting": services_of(request).imports.pending.waiting(),
    }


@signed_in
async def current_import(request: Request):
    allow_import(request)
    operation = services_of(request).imports.current_operation()
    if operation is None:
        return redirect(PREFIX + "/imports")
    view = operation_view(operation)
    context = {"op": view}
    if view["phase"] == "picking":
        context["picker"] = await page_of(request, operation)
    elif view["phase"] == "finished":
        context["summary"] = _summary(request, operation)
    return render(request, "import_current.html", **context)


@signed_in
async def current_panel(request: Request):
    """The current operation's step and counts alone, for the page to swap in live."""
    allow_import(request)
    operation = services_of(request).imports.current_operation()
    if operation is None:
        return render(request, "import_panel.html", op=None)
    return render(request, "import_panel.html", op=operation_view(operation))


@signed_in
async def cancel_import(request: Request):
    allow_import(request)
    # Waits for a running prepare or import to stop.
    await run_in_threadpool(services_of(request).imports.clear)
    return redirect(CURRENT)


@signed_in
async def fetch_pending(request: Request):
    """downloadPendingFiles or downloadPendingAvatars, as `/pending/files` or `/avatars`."""
    allow_import(request)
    pending = services_of(request).imports.pending
    fetch = {
        "files": pending.download_pending_files,
        "avatars": pending.download_pending_avatars,
    }.get(request.path_params["what"])
    if fetch is None:
        raise NotFound("Only pending files and pending avatars can be fetched.")
    await run_in_threadpool(fetch, user_of(request)["_id"])
    return redirect(CURRENT)


ROUTES = [
    Route(PREFIX + "/imports", imports_page),
    Route(PREFIX + "/imports/new/{key}", new_import),
    Route(CURRENT, current_import),
    Route(CURRENT + "/panel", current_panel),
    Route(PREFIX + "/imports/cancel", cancel_import, methods=["POST"]),
    Route(PREFIX + "/imports/pending/{what}", fetch_pending, methods=["POST"]),
]
