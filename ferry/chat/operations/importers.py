"""The importers an operation can name, and Rocket.Chat's errors for a wrong one."""

from __future__ import annotations

from dataclasses import dataclass

from ferry.chat.parsers import REGISTRY
from ferry.kernel.errors import MeteorError

# Rocket.Chat's error types when an import is asked of a missing or unsuitable operation;
# `startImport` carries them in a Meteor error, `import.run` as the plain message.
IMPORTER_NOT_DEFINED = "error-importer-not-defined"
OPERATION_NOT_FOUND = "error-operation-not-found"
INVALID_OPERATION_STATUS = "error-invalid-operation-status"


@dataclass(frozen=True)
class ImporterInfo:
    key: str
    name: str
    visible: bool
    takes_files: bool
    # The operation's `type`; Rocket.Chat writes "api" for API imports, else the name.
    operation_type: str | None = None


IMPORTERS: dict[str, ImporterInfo] = {
    **{key: ImporterInfo(key, parser.name, True, True) for key, parser in REGISTRY.items()},
    "api": ImporterInfo("api", "API", False, False, operation_type="api"),
    "pending-files": ImporterInfo("pending-files", "Pending Files", False, False),
    "pending-avatars": ImporterInfo("pending-avatars", "Pending Avatars", False, False),
}


def importer_info(key: str, details: str) -> ImporterInfo:
    """The importer registered under `key`; `details` names the method asking, as Rocket.Chat does.

    Raises:
        MeteorError: no importer has that key.
    """
    info = IMPORTERS.get(key)
    if info is None:
        raise MeteorError(
            IMPORTER_NOT_DEFINED,
            f"The importer ({key}) has no import class defined.",
            details,
        )
    return info


def visible_importers() -> list[dict]:
    return [{"key": i.key, "name": i.name} for i in IMPORTERS.values() if i.visible]
