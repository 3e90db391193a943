"""The imports page: the importers with a note on each format, the running operation's
step and counts, and the recent operations."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from handlers.ui.web import PREFIX, render, services_of, signed_in, user_of

FORMAT_NOTES = {
    "csv": "A zip of users.csv, channels.csv and one folder of messages per channel.",
    "slack": "A Slack workspace export (zip): users, channels and their messages.",
    "slack-users": "A Slack users CSV export: accounts only.",
    "hipchatenterprise": "A HipChat Enterprise export (tar.gz, optionally encrypted).",
}


@signed_in
async def imports_page(request: Request):
    services = services_of(request)
    services.accounts.authorize(user_of(request), "view-import-operations")
    importers = [
        {**importer, "note": FORMAT_NOTES.get(importer["key"], "")}
        for importer in services.imports.visible_importers()
    ]
    return render(
        request,
        "imports.html",
        importers=importers,
        current=services.imports.current_operation(),
        recent=services.imports.latest_operations(),
    )


ROUTES = [Route(PREFIX + "/imports", imports_page)]
