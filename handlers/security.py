"""Security functions named in openapi.yaml; each answers with the caller or None (401)."""

from __future__ import annotations

from handlers.context import PRINCIPAL, authorize_request, services


def check_user_id(apikey: str, required_scopes=None):
    # The pair is verified by check_auth_token, which reads this header too.
    return {"sub": apikey} if apikey else None


def check_auth_token(apikey: str, request=None, required_scopes=None):
    user_id = request.headers.get("x-user-id")
    if not apikey or not user_id:
        return None
    return _principal(apikey, user_id, request)


def check_bearer(token: str, request=None, required_scopes=None):
    return _principal(token, None, request) if token else None


def _principal(token: str, user_id: str | None, request):
    user = services().accounts.user_for_token(token, user_id)
    if user is None:
        return None
    authorize_request(request.scope, user)
    return {"sub": user["_id"], PRINCIPAL: {"user": user, "token": token}}
