"""The request log and request metrics: one line and one observation per request.

It sits outside Connexion's exception handling, so it sees the status actually sent,
error answers included. The operationId comes from Connexion's routing, the user id
from the security functions (through `note_caller`). The query string is logged only
with secrets masked and URLs in it (`?download=`) redacted; headers never are.
"""

from __future__ import annotations

import time

from ferry.kernel.logs import redact_query
from ferry.ops.telemetry import Telemetry

# Where, in the ASGI scope's extensions, the security functions leave the caller's id.
_REQUEST_INFO = "ferry_request"


def note_caller(scope, caller: str) -> None:
    info = scope.get("extensions", {}).get(_REQUEST_INFO)
    if info is not None:
        info["user_id"] = caller


def operation_of(scope) -> str | None:
    return scope.get("extensions", {}).get("connexion_routing", {}).get("operation_id")


class RequestLogMiddleware:
    def __init__(self, app, telemetry: Telemetry):
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        info: dict = {}
        # Inner layers may copy the scope, but they share this dict.
        scope.setdefault("extensions", {})[_REQUEST_INFO] = info
        status = [500]

        async def send_and_note(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            query = scope.get("query_string", b"").decode("latin-1")
            path = scope.get("path", "")
            if query:
                path = f"{path}?{redact_query(query)}"
            self.telemetry.request_finished(
                method=scope.get("method", ""),
                path=path,
                status=status[0],
                seconds=time.perf_counter() - started,
                operation=operation_of(scope),
                user_id=info.get("user_id"),
            )
