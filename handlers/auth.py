"""Log in, log out, and who am I (Rocket.Chat's shapes)."""

from connexion import request

from ferry.accounts import public_user
from handlers.context import current_principal, services


def login(body: dict):
    """POST /api/v1/login"""
    identity = body.get("user") or body.get("username") or body.get("email") or ""
    # The peer address as connected; X-Forwarded-For is client-controlled and ignored.
    client_ip = request.client.host if request.client else None
    user, token = services().accounts.login(identity, body["password"], client_ip)
    return {
        "status": "success",
        "data": {"userId": user["_id"], "authToken": token, "me": public_user(user)},
    }


def logout():
    """POST /api/v1/logout"""
    services().accounts.logout(current_principal()["token"])
    return {"status": "success", "data": {"message": "You've been logged out!"}}


def me():
    """GET /api/v1/me"""
    return {**public_user(current_principal()["user"]), "success": True}
