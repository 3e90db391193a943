"""Getting an export onto the server: stored names, size caps, the admin's import folder
and the answers Rocket.Chat gives when a fetch is refused."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import IO

from ferry.downloads.policy import DOMAIN_BLOCKED, FetchError
from ferry.kernel.errors import MeteorError, PlainRocketChatError
from ferry.kernel.logs import redact_text

log = logging.getLogger("ferry.imports")

COPY_CHUNK = 1024 * 1024


def stored_file_name(user_id: str, file_name: str) -> str:
    """Rocket.Chat's `<Y><M-1><D><h><m><s>_<userId>_<name>` (UTC, unpadded), name made safe."""
    moment = time.gmtime()
    day = (moment.tm_year, moment.tm_mon - 1, moment.tm_mday)
    stamp = "".join(str(part) for part in (*day, moment.tm_hour, moment.tm_min, moment.tm_sec))
    base = Path(file_name.replace("\\", "/")).name.strip()
    safe = "".join(ch for ch in base if ch.isprintable() and ch not in "/\0").lstrip(".")
    return f"{stamp}_{user_id}_{safe[:200] or 'import-file'}"


def file_too_large(max_size: int) -> MeteorError:
    return MeteorError(
        "error-file-too-large",
        f"The import file is larger than {max_size} bytes.",
        "uploadImportFile",
    )


def copy_capped(source: IO[bytes], target: Path, max_size: int) -> None:
    """Copy the stream to `target`, refusing it once it passes `max_size` bytes.

    Raises:
        MeteorError: the stream is larger than `max_size`.
    """
    written = 0
    with open(target, "wb") as out:
        while chunk := source.read(COPY_CHUNK):
            written += len(chunk)
            if written > max_size:
                raise file_too_large(max_size)
            out.write(chunk)


def local_import_path(import_folder: Path | None, raw: str) -> Path:
    """`raw` resolved inside the admin's import folder, links followed.

    Raises:
        MeteorError: no import folder, or the path is missing or leads outside it.
    """
    missing = MeteorError("error-import-file-missing", raw, "downloadPublicImportFile")
    if import_folder is None or "\0" in raw:
        raise missing
    root = import_folder.resolve()
    candidate = Path(raw)
    try:
        resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
        if not resolved.is_relative_to(root) or not resolved.exists():
            raise missing
    except OSError:  # a name too long for the file system, a loop of links, ...
        raise missing from None
    return resolved


def fetch_failure(refusal: FetchError) -> PlainRocketChatError:
    """downloadPublicImportFile's answer to a refused or failed fetch."""
    # Rocket.Chat answers an SSRF refusal with exactly this string.
    if refusal.code == DOMAIN_BLOCKED:
        log.warning("downloadPublicImportFile refused: %s", redact_text(refusal.message))
        return PlainRocketChatError("error-ssrf-validation-failed")
    return PlainRocketChatError(refusal.message)
