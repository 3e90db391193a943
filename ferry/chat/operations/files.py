"""Getting an export onto the server: stored names, size caps, the admin's import folder
and the answers Rocket.Chat gives when a fetch is refused."""

from __future__ import annotations

import binascii
import logging
import time
from pathlib import Path
from typing import IO

from ferry.downloads.policy import DOMAIN_BLOCKED, FetchError
from ferry.kernel.errors import InvalidInput, MeteorError, PlainRocketChatError
from ferry.kernel.logs import redact_text

log = logging.getLogger("ferry.imports")

COPY_CHUNK = 1024 * 1024
# Base64 text is decoded this many characters at a time (a multiple of 4).
BASE64_CHUNK = 1024 * 1024
NOT_BASE64 = "binaryContent is not valid base64."


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


def decode_base64_capped(source: IO[bytes], out: IO[bytes], max_size: int) -> None:
    """Decode the base64 text of `source` into `out` a chunk at a time, refusing it once
    the decoded bytes pass `max_size`. The text is held a chunk at a time, never whole.

    Raises:
        InvalidInput: the text is not base64 (a character outside the alphabet, padding
            before the end, a length that is not a multiple of 4).
        MeteorError: the decoded file is larger than `max_size`.
    """
    carry = b""
    written = 0
    padded = False
    while chunk := source.read(BASE64_CHUNK):
        text = carry + chunk
        whole = len(text) - len(text) % 4
        block, carry = text[:whole], text[whole:]
        if not block:
            continue
        if padded:
            raise InvalidInput(NOT_BASE64)
        try:
            data = binascii.a2b_base64(block, strict_mode=True)
        except binascii.Error:
            raise InvalidInput(NOT_BASE64) from None
        padded = block.endswith(b"=")
        written += len(data)
        if written > max_size:
            raise file_too_large(max_size)
        out.write(data)
    if carry:
        raise InvalidInput(NOT_BASE64)


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
