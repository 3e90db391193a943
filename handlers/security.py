"""Security functions named in openapi.yaml; each answers with the caller or None (401)."""

from __future__ import annotations

import hmac

from handlers.context import PRINCIPAL, authorize_request, services
from handlers.observe import note_caller, operation_of

# The one operation the --metrics-token opens, and the caller id logged for it.
METRICS_OPERATION = "handlers.server.get_metrics"
METRICS_CALLER = "metrics-token"


def check_user_id(apikey: str, required_scopes=None):
    # The pair is verified by check_auth_token, which reads this header too.
    return {"sub": apikey} if apikey else None


def check_auth_token(apikey: str, request=None, required_scopes=None):
    user_id = request.headers.get("x-user-id")
    if not apikey or not user_id:
        return None
    return _principal(apikey, user_id, request)


def check_bearer(token: str, request=None, required_scopes=None):
    if not token:
        return None
    if _is_metrics_token(token, request.scope):
        note_caller(request.scope, METRICS_CALLER)
        return {"sub": METRICS_CALLER}
    return _principal(token, None, request)


def _is_metrics_token(token: str, scope) -> bool:
    expected = services().config.metrics_token
    if not expected or operation_of(scope) != METRICS_OPERATION:
        return False
    return hmac.compare_digest(token.encode(), expected.encode())


def _principal(token: str, user_id: str | None, request):
    user = services().accounts.user_for_token(token, user_id)
    if user is None:
        return None
    note_caller(request.scope, user["_id"])
    authorize_request(request.scope, user)
    return {"sub": user["_id"], PRINCIPAL: {"user": user, "token": token}}
