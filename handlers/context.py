"""Per-request access to the services and the caller, and the permission gate."""

from __future__ import annotations

import re
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from connexion import context as connexion_context

from ferry.kernel.errors import Unauthenticated

if TYPE_CHECKING:
    from ferry.services import Services

SPEC_PATH = Path(__file__).resolve().parent / "openapi.yaml"
_services: ContextVar[Services] = ContextVar("ferry_services")

# Security functions put the authenticated user here.
PRINCIPAL = "principal"


class ServicesMiddleware:
    """Makes the app's services visible to handlers and security functions of each request."""

    def __init__(self, app, services: Services):
        self.app = app
        self.services = services

    async def __call__(self, scope, receive, send):
        token = _services.set(self.services)
        try:
            await self.app(scope, receive, send)
        finally:
            _services.reset(token)


def services() -> Services:
    return _services.get()


@cache
def spec() -> dict:
    """openapi.yaml, parsed once per process (by libyaml where PyYAML has it: seven times
    faster than its pure-Python parser on this file). Read, never changed: a user that
    changes it takes a copy."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC_PATH.open("rb") as file:
        return yaml.load(file, Loader=loader)


@cache
def permissions_by_operation() -> dict[str, str | None]:
    """Handler path -> the `x-ferry-permission` the spec gives it (None: any logged-in user).

    The key is what Connexion resolves and puts in the routing scope: the operation's
    `x-openapi-router-controller` joined to its `operationId`, or the bare operationId.
    """
    table: dict[str, str | None] = {}
    for item in spec()["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and "operationId" in operation:
                controller = operation.get("x-openapi-router-controller")
                handler = operation["operationId"]
                if controller:
                    handler = f"{controller}.{handler}"
                table[handler] = operation.get("x-ferry-permission")
    return table


def authorize_request(scope, user: dict) -> None:
    """The permission gate. It runs in the security step, before request validation, so
    a caller without the permission learns nothing about what a valid request looks like.

    Raises:
        Forbidden: the user lacks the operation's permission.
    """
    routing = scope.get("extensions", {}).get("connexion_routing", {})
    permission = permissions_by_operation().get(routing.get("operation_id"))
    services().accounts.authorize(user, permission)


def current_principal() -> dict:
    """{"user": <user doc>, "token": <raw token>} of the authenticated caller."""
    token_info = connexion_context.context.get("token_info") or {}
    principal = token_info.get(PRINCIPAL)
    if principal is None:
        # The X-User-Id + X-Auth-Token pair: Connexion nests each scheme's result.
        principal = (token_info.get("authToken") or {}).get(PRINCIPAL)
    if principal is None:
        raise Unauthenticated("unauthorized")
    return principal


def current_user() -> dict:
    return current_principal()["user"]


CATCH_ALL = "/{path}"


@cache
def _path_patterns() -> list[tuple[str, re.Pattern, list[str]]]:
    patterns = []
    for template, item in spec()["paths"].items():
        # `{path}` spans slashes (Connexion's `format: path`); other parameters do not.
        regex = re.sub(r"\\{path\\}", ".+", re.escape(template))
        regex = re.sub(r"\\{[^}]+\\}", "[^/]+", regex)
        methods = [m.upper() for m in ("get", "put", "post", "delete", "patch") if m in item]
        methods += ["HEAD"] if "GET" in methods else []
        patterns.append((template, re.compile(f"^{regex}$"), methods))
    return patterns


def allowed_methods(path: str, *, include_catch_all: bool = True) -> list[str] | None:
    """The methods the spec declares for the first path template matching `path`."""
    for template, pattern, methods in _path_patterns():
        if pattern.match(path):
            if template == CATCH_ALL and not include_catch_all:
                return None
            return methods
    return None
