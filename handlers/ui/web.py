"""The /ui/ application, the middleware that routes browsers to it, and what every view shares."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ferry import __version__
from ferry.kernel.errors import DownloadRefused, FerryError
from handlers.errors import STATUS_BY_ERROR
from handlers.ui.session import CSRF_FIELD, Sessions

if TYPE_CHECKING:
    from ferry.services import Services

PREFIX = "/ui"
HERE = Path(__file__).resolve().parent
# Scripts and styles come from this origin's static files only; nothing inline.
PAGE_POLICY = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
}

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def human_size(size: int | None) -> str:
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


templates.filters["size"] = human_size


def error_of(exc: FerryError) -> tuple[int, str, str]:
    """(status, code, message) of a domain error, as the JSON envelope would name them."""
    status = next(STATUS_BY_ERROR[cls] for cls in type(exc).__mro__ if cls in STATUS_BY_ERROR)
    if isinstance(exc, DownloadRefused):
        return status, exc.code, exc.message
    return status, exc.error_type or str(status), exc.message


def services_of(request: Request) -> Services:
    return request.app.state.services


def render(
    request: Request, template: str, status: int = 200, headers: dict | None = None, **context
) -> Response:
    session = getattr(request.state, "session", None)
    if session is not None:
        user, token = session
        context.setdefault("me", user)
        context.setdefault("can", services_of(request).accounts.permissions_of(user))
        context.setdefault("csrf", request.app.state.sessions.csrf_token(token))
    context.setdefault("version", __version__)
    context.setdefault("path", request.url.path)
    html = templates.get_template(template).render(request=request, **context)
    return Response(
        html,
        status_code=status,
        media_type="text/html",
        headers={**PAGE_HEADERS, **(headers or {})},
    )


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303, headers=PAGE_HEADERS)


def problem(request: Request, status: int, code: str, message: str) -> Response:
    return render(request, "error.html", status=status, code=code, message=message)


def csrf_refused(request: Request) -> Response:
    return problem(
        request,
        403,
        "error-csrf",
        "The form's security token is missing or stale; reload the page and retry.",
    )


def signed_in(view=None, *, reads_form: bool = True):
    """The view runs for a signed-in browser (others go to the login page); a
    state-changing request also needs the session's CSRF token in its form. A view that
    streams its body itself (`reads_form=False`) checks the token as it reads."""
    if view is None:
        return functools.partial(signed_in, reads_form=reads_form)

    @functools.wraps(view)
    async def wrapper(request: Request) -> Response:
        sessions: Sessions = request.app.state.sessions
        session = sessions.user_of(request)
        if session is None:
            if request.method == "GET":
                return redirect(f"{PREFIX}/login?next={request.url.path}")
            return problem(request, 401, "unauthorized", "You must be logged in to do this.")
        request.state.session = session
        if request.method != "GET" and reads_form:
            form = await request.form()
            request.state.form = form
            if not sessions.csrf_valid(session[1], form.get(CSRF_FIELD)):
                return csrf_refused(request)
        try:
            return await view(request)
        except FerryError as exc:
            return problem(request, *error_of(exc))

    return wrapper


def user_of(request: Request) -> dict:
    return request.state.session[0]
