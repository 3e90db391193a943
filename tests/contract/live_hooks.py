"""Schemathesis hooks for the live run (loaded through SCHEMATHESIS_HOOKS).

Every case is authenticated as the run's admin, through an auth provider, so the
`ignored_auth` check can still send cases without it. Tokens come from logins the
runner made before fuzzing started (fuzzed wrong passwords later get logins from this
address throttled). Three operations would otherwise end the run's own session or
rights: `POST /api/v1/logout` revokes the token it is sent with, so logout cases use
spare tokens, the last one again once they run out; `users.update` may set the admin's
password (the stateful phase links the `userId` from login to it) and
`roles.removeUserFromRole` may take its admin role once another admin exists, so such
cases are pointed at a spare user. `users.logoutOtherClients` revokes every token of
its caller and answers a new one, so its cases run as a user of their own whose newest
token is kept.
"""

import json
import os

import schemathesis


def _credentials(pair: str) -> dict[str, str]:
    user_id, token = pair.split(":", 1)
    return {"X-User-Id": user_id, "X-Auth-Token": token}


_SPARE_TOKENS = [
    _credentials(pair) for pair in os.environ.get("FERRY_CONTRACT_LOGOUT_TOKENS", "").split(",")
]
LOGOUT_OTHER_CLIENTS = "/api/v1/users.logoutOtherClients"
_SESSIONS_USER = _credentials(os.environ["FERRY_CONTRACT_SESSIONS_TOKEN"])


@schemathesis.auth(refresh_interval=3600)
class AdminSession:
    def get(self, case, ctx):
        return _credentials(os.environ["FERRY_CONTRACT_TOKEN"])

    def set(self, case, data, ctx):
        if case.operation.path == "/api/v1/logout":
            data = _SPARE_TOKENS.pop() if len(_SPARE_TOKENS) > 1 else _SPARE_TOKENS[0]
        elif case.operation.path == LOGOUT_OTHER_CLIENTS:
            data = dict(_SESSIONS_USER)
        case.headers = {**(case.headers or {}), **data}


@schemathesis.hook
def before_call(ctx, case, kwargs):
    body = case.body
    if not isinstance(body, dict):
        return
    path = case.operation.path
    if path == "/api/v1/users.update" and body.get("userId") == (case.headers or {}).get(
        "X-User-Id"
    ):
        case.body = {**body, "userId": os.environ["FERRY_CONTRACT_SPARE_USER_ID"]}
    if path == "/api/v1/roles.removeUserFromRole" and body.get("username") == os.environ.get(
        "FERRY_ADMIN_USERNAME"
    ):
        case.body = {**body, "username": "spare"}


@schemathesis.hook
def after_call(ctx, case, response):
    if case.operation.path == LOGOUT_OTHER_CLIENTS and response.status_code == 200:
        _SESSIONS_USER["X-Auth-Token"] = json.loads(response.content)["token"]
