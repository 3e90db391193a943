"""The admin page: users (create, roles, deactivate, reset password), settings read-only,
health and version."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from ferry.accounts import ROLES
from handlers.ui.web import PREFIX, redirect, render, services_of, signed_in, user_of

PAGE_SIZE = 50


@signed_in
async def admin_page(request: Request):
    services = services_of(request)
    services.accounts.authorize(user_of(request), "edit-other-user-info")
    try:
        offset = max(0, int(request.query_params.get("offset", "0")))
    except ValueError:
        offset = 0
    users, total = services.accounts.list_users(offset, PAGE_SIZE)
    config = services.config
    settings = {
        "Downloads allowed": config.allow_download,
        "Allowed domains": ", ".join(config.download_allowed_domains) or "any",
        "Blocked domains": ", ".join(config.download_blocked_domains) or "none",
        "Largest download (bytes)": config.max_download_size or "no limit",
        "Concurrent downloads": config.max_concurrent_downloads,
        "Largest upload (bytes)": config.max_upload_size,
    }
    return render(
        request,
        "admin.html",
        users=users,
        total=total,
        offset=offset,
        page_size=PAGE_SIZE,
        roles=ROLES,
        settings=settings,
        health=services.health(),
    )


@signed_in
async def create_user(request: Request):
    form = request.state.form
    services = services_of(request)
    services.accounts.authorize(user_of(request), "create-user")
    services.accounts.create_user(
        str(form.get("username", "")),
        email=str(form.get("email", "")),
        name=str(form.get("name", "")) or str(form.get("username", "")),
        password=str(form.get("password", "")),
        roles=[str(form.get("role") or "user")],
    )
    return redirect(PREFIX + "/admin")


@signed_in
async def change_user(request: Request):
    form = request.state.form
    services = services_of(request)
    accounts = services.accounts
    accounts.authorize(user_of(request), "edit-other-user-info")
    target = accounts.find_user(user_id=request.path_params["id"])
    action = form.get("action")
    if action == "grant" or action == "revoke":
        accounts.authorize(user_of(request), "access-permissions")
        accounts.change_role(target["username"], str(form.get("role", "")), grant=action == "grant")
    elif action == "deactivate" or action == "activate":
        accounts.update_user(target["_id"], {"active": action == "activate"})
    elif action == "password":
        accounts.update_user(target["_id"], {"password": str(form.get("password", ""))})
    return redirect(PREFIX + "/admin")


ROUTES = [
    Route(PREFIX + "/admin", admin_page),
    Route(PREFIX + "/admin/users", create_user, methods=["POST"]),
    Route(PREFIX + "/admin/users/{id}", change_user, methods=["POST"]),
]
