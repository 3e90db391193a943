"""Choosing the name a downloaded file gets, and making any name safe to create.

Precedence: the name the user asked for, then Content-Disposition `filename*`
(RFC 8187), then its plain `filename`, then the last segment of the URL path, then a
generated name. Whatever wins is reduced to one harmless path component.

Hidden names: a name the user typed may start with a dot (they asked for it), but
names that come from the remote side lose their leading dots, so a server cannot drop
`.bashrc` or `.htaccess` into a directory. Partial files are never found by pattern
(see manager.recover), so no final name can be mistaken for one.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from urllib.parse import unquote

MAX_NAME_BYTES = 255
GENERATED_STEM = "download"

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")
_COMPOUND_SUFFIXES = (".tar",)
_MAX_EXTENSION_BYTES = 32


def _trim_utf8(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


def split_extension(name: str) -> tuple[str, str]:
    """`("report", ".pdf")`, `("data", ".tar.gz")`; a leading dot is not an extension."""
    dot = name.rfind(".")
    if dot <= 0:
        return name, ""
    stem, extension = name[:dot], name[dot:]
    for compound in _COMPOUND_SUFFIXES:
        if stem.lower().endswith(compound) and len(stem) > len(compound):
            stem, extension = stem[: -len(compound)], stem[-len(compound) :] + extension
    if len(extension.encode("utf-8")) > _MAX_EXTENSION_BYTES:
        return name, ""
    return stem, extension


def fit_name(stem: str, extension: str, limit: int = MAX_NAME_BYTES) -> str:
    """`stem + extension` within `limit` UTF-8 bytes, shortening the stem only."""
    room = limit - len(extension.encode("utf-8"))
    return _trim_utf8(stem, room).rstrip() + extension


def safe_name(candidate: str | None, *, allow_hidden: bool = False) -> str | None:
    """`candidate` reduced to a single safe path component, or None if nothing is left."""
    if not candidate:
        return None
    name = unicodedata.normalize("NFC", candidate)
    # Keep only what follows the last separator: "../../etc/passwd" -> "passwd".
    name = re.split(r"[/\\]", name)[-1]
    name = _UNSAFE.sub("", name).strip()
    if not allow_hidden:
        name = name.lstrip(". ")
    if name in ("", ".", "..") or set(name) == {"."}:
        return None
    stem, extension = split_extension(name)
    return fit_name(stem, extension) or None


def numbered(name: str, number: int) -> str:
    """The n-th alternative for a taken name: `report (1).pdf`, still within the limit."""
    if number == 0:
        return name
    stem, extension = split_extension(name)
    suffix = f" ({number})"
    return fit_name(stem, suffix + extension)


def part_name(name: str, tag: str) -> str:
    """The hidden temporary name a download is written to before it is published."""
    return "." + fit_name(name, f".{tag}.part", MAX_NAME_BYTES - 1)


# --- Content-Disposition ----------------------------------------------------------

_PARAM = re.compile(
    r"""
    ;\s*
    (?P<key>[^\s=;]+)\s*=\s*
    (?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<token>[^;]*))
    """,
    re.VERBOSE,
)


def _disposition_params(header: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for match in _PARAM.finditer(";" + header.split(";", 1)[1] if ";" in header else ""):
        key = match.group("key").lower()
        if match.group("quoted") is not None:
            # Unescape only \" and \\: a lone backslash is far more often a Windows path
            # separator than an escape, and must stay visible to `safe_name`.
            value = re.sub(r'\\([\\"])', r"\1", match.group("quoted"))
        else:
            value = match.group("token").strip()
        params.setdefault(key, value)
    return params


def _decode_ext_value(value: str) -> str | None:
    """RFC 8187 `charset'language'percent-encoded` -> text, or None if malformed."""
    pieces = value.split("'", 2)
    if len(pieces) != 3:
        return None
    charset = pieces[0].strip().lower() or "utf-8"
    if charset not in ("utf-8", "iso-8859-1", "us-ascii"):
        return None
    try:
        return unquote(pieces[2], encoding=charset, errors="strict")
    except (UnicodeDecodeError, LookupError):
        return None


def _undo_latin1(value: str) -> str:
    # http.client decodes header bytes as Latin-1; many servers send raw UTF-8 names.
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def name_from_disposition(header: str | None) -> str | None:
    if not header:
        return None
    params = _disposition_params(header)
    if "filename*" in params:
        decoded = _decode_ext_value(params["filename*"])
        name = safe_name(decoded)
        if name:
            return name
    if "filename" in params:
        return safe_name(_undo_latin1(params["filename"]))
    return None


def name_from_url_path(path: str) -> str | None:
    segment = path.rsplit("/", 1)[-1]
    return safe_name(unquote(segment, errors="replace"))


def generated_name(content_type: str | None = None) -> str:
    extension = ""
    if content_type:
        mime = content_type.split(";", 1)[0].strip().lower()
        extension = mimetypes.guess_extension(mime, strict=False) or ""
    return GENERATED_STEM + extension


def choose_name(
    requested: str | None,
    *,
    disposition: str | None = None,
    url_path: str = "",
    content_type: str | None = None,
) -> str:
    """The file name for a download, by the precedence in this module's docstring."""
    return (
        safe_name(requested, allow_hidden=True)
        or name_from_disposition(disposition)
        or name_from_url_path(url_path)
        or generated_name(content_type)
    )
