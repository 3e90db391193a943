"""Schemathesis hooks for the live run (loaded through SCHEMATHESIS_HOOKS).

Every case is authenticated as the run's admin, through an auth provider, so the
`ignored_auth` check can still send cases without it. Two operations would otherwise end
the run's own session or rights: `POST /api/v1/logout` revokes the token it is sent with,
so each logout case logs in afresh; `users.update` may set the admin's password (the
stateful phase links the `userId` from login to it) and `roles.removeUserFromRole` may take
its admin role once another admin exists, so such cases are pointed at a spare user.
"""

import os

import requests
import schemathesis


def login() -> dict[str, str]:
    answer = requests.post(
        f"{os.environ['FERRY_CONTRACT_BASE_URL']}/api/v1/login",
        json={
            "user": os.environ["FERRY_ADMIN_USERNAME"],
            "password": os.environ["FERRY_ADMIN_PASSWORD"],
        },
        timeout=10,
    )
    answer.raise_for_status()
    data = answer.json()["data"]
    return {"X-User-Id": data["userId"], "X-Auth-Token": data["authToken"]}


@schemathesis.auth(refresh_interval=3600)
class AdminSession:
    def get(self, case, ctx):
        return login()

    def set(self, case, data, ctx):
        credentials = login() if case.operation.path == "/api/v1/logout" else data
        case.headers = {**(case.headers or {}), **credentials}


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
