"""The one error envelope: every non-2xx body Ferry sends is built here."""

from __future__ import annotations

import errno
import logging
import math
from typing import Any

import orjson
from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect

from ferry.kernel import errors
from handlers.context import allowed_methods

log = logging.getLogger("ferry.errors")

UNAUTHORIZED_BODY = {
    "success": False,
    "status": "error",
    "error": "unauthorized",
    "message": "You must be logged in to do this.",
}

# Domain error class -> HTTP status. The most specific class wins (checked in MRO order).
STATUS_BY_ERROR: dict[type[errors.FerryError], int] = {
    errors.InvalidInput: 400,
    errors.MeteorError: 400,
    errors.PlainRocketChatError: 400,
    errors.Unauthenticated: 401,
    errors.WrongCredentials: 401,
    errors.LoginBlocked: 429,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.RangeNotSatisfiable: 416,
    errors.FerryError: 400,
}


# The longest `error` or `message` an envelope carries; longer texts (one that quotes a
# huge input) are cut, as the spec says.
MAX_ERROR_TEXT = 4096


def error_response(
    status: int,
    error: str,
    *,
    error_type: str | None = None,
    details: Any = None,
    headers: dict | None = None,
    extra: dict | None = None,
) -> ConnexionResponse:
    body: dict[str, Any] = {"success": False, "error": error[:MAX_ERROR_TEXT]}
    if error_type is not None:
        body["errorType"] = error_type
    if details is not None:
        body["details"] = details
    if extra:
        body.update(extra)
        if isinstance(body.get("message"), str):
            body["message"] = body["message"][:MAX_ERROR_TEXT]
    return json_response(status, body, headers)


def envelope_bytes(error: str) -> bytes:
    """The envelope as bytes, for answers written below the app (the HTTP server's own)."""
    return orjson.dumps({"success": False, "error": error})


def json_response(status: int, body: Any, headers: dict | None = None) -> ConnexionResponse:
    # Error handlers must answer with a ConnexionResponse; Connexion converts it.
    return ConnexionResponse(
        status_code=status,
        mimetype="application/json",
        body=orjson.dumps(body),
        headers=headers or {},
    )


def unauthorized() -> ConnexionResponse:
    return json_response(401, UNAUTHORIZED_BODY)


def _is_api_path(request: ConnexionRequest) -> bool:
    return request.url.path.startswith("/api/")


# The file server's documented download codes and the statuses Ferry answers them with.
STATUS_BY_DOWNLOAD_CODE = {
    "INVALID_URL": 400,
    "DOMAIN_BLOCKED": 403,
    "DOWNLOAD_FORBIDDEN": 403,
    "DOWNLOAD_QUEUE_FULL": 503,
    "SERVER_STOPPED": 503,
}
# How long a client refused for a full download queue is asked to wait (Retry-After).
QUEUE_FULL_RETRY_SECONDS = 30


def download_refused(exc: errors.DownloadRefused) -> ConnexionResponse:
    status = STATUS_BY_DOWNLOAD_CODE.get(exc.code, 400)
    headers = {"Retry-After": str(QUEUE_FULL_RETRY_SECONDS)} if status == 503 else None
    if exc.filename is None:
        return error_response(status, exc.code, headers=headers, extra={"message": exc.message})
    body = {
        "download_id": None,
        "filename": exc.filename,
        "path": exc.path,
        "message": exc.message,
    }
    return error_response(status, exc.code, headers=headers, extra=body)


async def on_domain_error(request: ConnexionRequest, exc: errors.FerryError) -> ConnexionResponse:
    if isinstance(exc, errors.DownloadRefused):
        return download_refused(exc)
    status = next(STATUS_BY_ERROR[cls] for cls in type(exc).__mro__ if cls in STATUS_BY_ERROR)
    if isinstance(exc, errors.Unauthenticated):
        return unauthorized()
    if isinstance(exc, errors.LoginBlocked):
        return error_response(
            status,
            exc.error_type,
            headers={"Retry-After": str(max(1, math.ceil(exc.retry_after)))},
            extra={"status": "error", "message": exc.message},
        )
    if isinstance(exc, errors.WrongCredentials):
        return error_response(401, exc.message, extra={"status": "error", "message": exc.message})
    if isinstance(exc, errors.PayloadTooLarge):
        # The rest of the body is never read: closing ends the upload instead of
        # draining it.
        return error_response(
            status, exc.message, error_type=exc.error_type, headers={"Connection": "close"}
        )
    if isinstance(exc, errors.RangeNotSatisfiable):
        return error_response(status, exc.message, headers={"Content-Range": f"bytes */{exc.size}"})
    error_type = None if isinstance(exc, errors.PlainRocketChatError) else exc.error_type
    return error_response(status, exc.message, error_type=error_type, details=exc.details)


async def on_problem(request: ConnexionRequest, exc: ProblemException) -> ConnexionResponse:
    """Connexion's own errors: request validation (400), authentication (401), ..."""
    if exc.status == 401:
        return unauthorized()
    message = str(exc.detail or exc.title or "Bad request").split("\n", 1)[0]
    error_type = "error-invalid-params" if exc.status == 400 and _is_api_path(request) else None
    if exc.status >= 500:
        log.error("request failed: %s %s: %s", request.method, request.url.path, exc.detail)
        message = "Internal server error"
    return error_response(exc.status, message, error_type=error_type, headers=exc.headers)


async def on_http_error(request: ConnexionRequest, exc: HTTPException) -> ConnexionResponse:
    """Routing 404 and 405 (keeping `Allow`), and Connexion's 403."""
    if exc.status_code == 401:
        return unauthorized()
    if exc.status_code == 403:
        return error_response(403, errors.PERMISSION_DENIED)
    messages = {404: "Not found", 405: "Method not allowed"}
    message = messages.get(exc.status_code) or str(exc.detail).split("\n", 1)[0]
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Connexion routes each operation separately, so its Allow names one operation's
        # methods; the spec knows them all.
        methods = allowed_methods(request.url.path)
        if methods:
            headers["Allow"] = ", ".join(methods)
    return error_response(exc.status_code, message, headers=headers)


async def on_undecodable(request: ConnexionRequest, exc: UnicodeDecodeError) -> ConnexionResponse:
    """Connexion's body validator decodes JSON as UTF-8 and lets the error escape."""
    error_type = "error-invalid-params" if _is_api_path(request) else None
    return error_response(400, "The request body is not valid UTF-8.", error_type=error_type)


async def on_bad_multipart(request: ConnexionRequest, exc: MultiPartException) -> ConnexionResponse:
    """A multipart body the parser cannot read (an over-long part header, no boundary)."""
    error_type = "error-invalid-params" if _is_api_path(request) else None
    return error_response(
        400, f"The multipart body is invalid: {exc.message}", error_type=error_type
    )


async def on_client_gone(request: ConnexionRequest, exc: ClientDisconnect) -> ConnexionResponse:
    """The client left before its body ended; nobody reads this answer, nothing is logged."""
    return error_response(400, "The request body ended early.")


async def on_crash(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    log.exception("unhandled error in %s %s", request.method, request.url.path)
    return error_response(500, "Internal server error")


# --- a data directory that refuses writes: 507, never a 500 -------------------------
STORAGE_ERRORS = {
    errno.ENOSPC: ("error-disk-full", "The server has no disk space left"),
    errno.EDQUOT: ("error-disk-full", "The server has no disk space left"),
    errno.EROFS: ("error-storage-read-only", "The server's data directory is read-only"),
}


async def on_os_error(request: ConnexionRequest, exc: OSError) -> ConnexionResponse:
    """A write the disk refused (full, over quota, read-only) is the operator's to fix,
    and the client is told so; any other OSError is a crash."""
    if exc.errno not in STORAGE_ERRORS:
        return await on_crash(request, exc)
    error_type, reason = STORAGE_ERRORS[exc.errno]
    log.error("%s %s: cannot write: %s", request.method, request.url.path, exc.strerror)
    message = f"{reason}; try again once an operator has fixed it. [{error_type}]"
    return error_response(507, message, error_type=error_type)


def register(app) -> None:
    app.add_error_handler(errors.FerryError, on_domain_error)
    app.add_error_handler(ProblemException, on_problem)
    app.add_error_handler(HTTPException, on_http_error)
    app.add_error_handler(UnicodeDecodeError, on_undecodable)
    app.add_error_handler(MultiPartException, on_bad_multipart)
    app.add_error_handler(OSError, on_os_error)
    app.add_error_handler(ClientDisconnect, on_client_gone)
    app.add_error_handler(Exception, on_crash)
