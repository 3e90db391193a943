"""Domain errors. Handlers map each class to an HTTP status in one table (handlers/errors.py)."""

from __future__ import annotations

from typing import Any

# Rocket.Chat's answer to a caller who lacks a permission.
PERMISSION_DENIED = (
    "User does not have the permissions required for this action [error-unauthorized]"
)


class FerryError(Exception):
    """Base of every error a user can cause; `message` is safe to show them."""

    error_type: str | None = None

    def __init__(self, message: str, *, error_type: str | None = None, details: Any = None):
        super().__init__(message)
        self.message = message
        if error_type is not None:
            self.error_type = error_type
        self.details = details


class InvalidInput(FerryError):
    """The request is well-formed but its values cannot be used."""

    error_type = "error-invalid-params"


class Unauthenticated(FerryError):
    """No valid credentials."""


class WrongCredentials(FerryError):
    """A login with an unknown user or a wrong password."""


class LoginBlocked(WrongCredentials):
    """Too many failed logins for this user or from this address; `retry_after` seconds."""

    def __init__(self, error_type: str, message: str, retry_after: float):
        super().__init__(message, error_type=error_type)
        self.retry_after = retry_after


class Forbidden(FerryError):
    """Valid credentials without the permission the operation needs."""


class NotFound(FerryError):
    """The thing asked for does not exist (or is hidden from this user)."""


class Conflict(FerryError):
    """The request clashes with the current state."""


class MeteorError(FerryError):
    """Rocket.Chat's `Meteor.Error(error, reason, details)`: `error` reads `<reason> [<error>]`."""

    def __init__(self, error_type: str, reason: str, details: Any = None):
        super().__init__(f"{reason} [{error_type}]", error_type=error_type, details=details)
        self.reason = reason


class PlainRocketChatError(FerryError):
    """Rocket.Chat's plain `Error(message)`: the body carries `error` only, no `errorType`."""


class RangeNotSatisfiable(FerryError):
    """A byte range that lies outside a file of `size` bytes."""

    def __init__(self, size: int):
        super().__init__("The requested range lies outside the file.")
        self.size = size


class DownloadRefused(FerryError):
    """A `?download=` that cannot start; `code` is the documented error code."""

    def __init__(
        self, code: str, message: str, *, filename: str | None = None, path: str | None = None
    ):
        super().__init__(message, error_type=code)
        self.code = code
        self.filename = filename
        self.path = path


class PayloadTooLarge(FerryError):
    """A request body over the limit of its route, refused before it is read."""

    error_type = "error-payload-too-large"

    def __init__(self, limit: int):
        super().__init__(f"The request body is larger than the limit of {limit} bytes.")
        self.limit = limit
