"""Log in, log out, and who am I (Rocket.Chat's shapes)."""

from connexion import request

from ferry.accounts import public_user
from ferry.kernel.errors import InvalidInput
from handlers.client_address import client_address
from handlers.context import current_principal, services


def login(body: dict | None = None, **form):
    """POST /api/v1/login (JSON or form-encoded)"""
    fields = body if isinstance(body, dict) else {}
    fields = {**form, **fields}
    # The peer as connected, or the client a trusted proxy names in X-Forwarded-For
    # (uvicorn's own reading of that header is off; see ferry/cli/serve.py).
    client_ip = client_address(
        request.client.host if request.client else None,
        request.headers.getlist("x-forwarded-for"),
        services().config.trusted_proxies,
    )
    accounts = services().accounts
    password = fields.get("password")
    if password is None and not fields.get("resume"):
        raise InvalidInput("Field 'password' is required.")
    if fields.get("resume") and password is None:
        user, token = accounts.resume(fields["resume"], client_ip)
    else:
        identity = fields.get("user") or fields.get("username") or fields.get("email") or ""
        if isinstance(password, dict):
            user, token = accounts.login(identity, None, client_ip, digest=password["digest"])
        else:
            user, token = accounts.login(identity, password or "", client_ip)
    return {
        "status": "success",
        "data": {"userId": user["_id"], "authToken": token, "me": public_user(user)},
    }


def logout():
    """POST /api/v1/logout"""
    services().accounts.logout(current_principal()["token"])
    return {"status": "success", "data": {"message": "You've been logged out!"}}


def logout_other_clients():
    """POST /api/v1/users.logoutOtherClients"""
    user_id = current_principal()["user"]["_id"]
    token, expires = services().accounts.logout_other_clients(user_id)
    return {"token": token, "tokenExpires": expires, "success": True}


def me():
    """GET /api/v1/me"""
    return {**public_user(current_principal()["user"]), "success": True}
