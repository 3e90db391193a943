"""Why one staging record could not be converted, in Rocket.Chat's per-record error strings."""

from __future__ import annotations

E_USER_NO_IDENTITY = "importer-user-missing-email-and-username"
E_CHANNEL_NO_NAME = "importer-channel-missing-name"
E_CHANNEL_NO_IMPORT_ID = "importer-channel-missing-import-id"
E_CHANNEL_MEMBERS = "importer-channel-missing-users"
E_CHANNEL_CREATOR = "importer-channel-invalid-creator"
E_MESSAGE_TIMESTAMP = "importer-message-invalid-timestamp"
E_MESSAGE_USER = "importer-message-unknown-user"
E_MESSAGE_ROOM = "importer-message-unknown-room"


class RecordError(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def error_code(problem: Exception) -> str:
    """What a failed record's mark says: Rocket.Chat's code, or what broke in a malformed one."""
    if isinstance(problem, RecordError):
        return problem.code
    return f"importer-invalid-record: {type(problem).__name__}: {problem}"
