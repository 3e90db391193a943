"""The /ui/ application, and the middleware that routes browsers to it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.staticfiles import StaticFiles

from handlers.ui.body_cap import FormBodyCap
from handlers.ui.imports.picker import Selections
from handlers.ui.routes import ROUTES
from handlers.ui.session import Sessions
from handlers.ui.web import HERE, PREFIX, redirect

if TYPE_CHECKING:
    from ferry.services import Services


def create_ui(services: Services) -> Starlette:
    app = Starlette(routes=ROUTES)
    app.state.services = services
    app.state.sessions = Sessions(services.accounts)
    app.state.import_selections = Selections()
    app.add_middleware(FormBodyCap)
    app.mount(PREFIX + "/static", StaticFiles(directory=HERE / "static"), name="static")
    return app


def prefers_html(accept: str) -> bool:
    """Whether an Accept header asks for HTML before JSON (a browser's does; API clients'
    either name JSON first or send */* alone)."""
    best_html = best_json = -1.0
    for position, item in enumerate(accept.split(",")):
        media, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        rank = quality - position / 1000
        media = media.strip().lower()
        if media in ("text/html", "application/xhtml+xml"):
            best_html = max(best_html, rank)
        elif media == "application/json":
            best_json = max(best_json, rank)
    return best_html > 0 and best_html > best_json


class UiMiddleware:
    """Hands /ui/ to the web page, and sends a browser that opens / there; every other
    request (the whole JSON API and the file routes) passes through untouched."""

    def __init__(self, app, services: Services):
        self.app = app
        self.ui = create_ui(services)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path = scope.get("path", "")
            # A request with API credentials is the file API's, so a served folder
            # named "ui" stays reachable through GET /{path}.
            headers = dict(scope.get("headers") or [])
            api_call = b"authorization" in headers or b"x-auth-token" in headers
            if not api_call and (path == PREFIX or path.startswith(PREFIX + "/")):
                # The Swagger UI lives at /api/v1/ui; only the bare prefix is ours.
                await self.ui(scope, receive, send)
                return
            if (
                path == "/"
                and scope.get("method") in ("GET", "HEAD")
                and not scope.get("query_string")
            ):
                accept = headers.get(b"accept", b"").decode("latin-1")
                if prefers_html(accept):
                    await redirect(PREFIX + "/")(scope, receive, send)
                    return
        await self.app(scope, receive, send)
