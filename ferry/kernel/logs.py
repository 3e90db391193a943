"""Structured logs: one event per line, as text or JSON, with secrets taken out.

Code logs an event with `event(logger, "download.completed", "human text", **fields)`.
The text format shows the text and then `key=value` pairs; the JSON format writes one
object per line with `time`, `level`, `logger`, `event`, `message` and the fields.

Anything that may carry a URL goes through `redact_url` (or `redact_text` for free
text) before it is logged: URL userinfo and secret-looking query parameters (Slack's
`?t=xoxe-...`, `token`, `key`, `sig`, `password`, ...) become `***`. Both formatters
also run `redact_text` over the final message as a second line of defence.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import IO, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

MASK = "***"
LOG_FORMATS = ("text", "json")

# Query parameter names that carry credentials: exact short names, or any name
# containing one of the longer words.
_SECRET_NAMES = frozenset({"t", "k", "s", "sig", "key", "code", "auth", "pass", "pwd", "jwt"})
_SECRET_WORDS = re.compile(
    r"token|secret|passw|signature|credential|key|auth|session|sig", re.IGNORECASE
)
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,15}://[^\s\"'<>]+")
# Slack tokens (xoxb-, xoxp-, xoxe-, ...) wherever they appear.
_SLACK_TOKEN = re.compile(r"\b(xox[a-z])-[A-Za-z0-9-]+")
# Kept readable in logs, and harmless: no `&` or `=` inside a value survives unencoded.
_SAFE_QUERY_CHARS = ":/@*,"


def is_secret_name(name: str) -> bool:
    lowered = name.strip().lower()
    return lowered in _SECRET_NAMES or bool(_SECRET_WORDS.search(lowered))


def redact_query(query: str) -> str:
    """A query string with secret-looking values masked and nested URLs redacted."""
    if not query:
        return query
    pairs = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        if is_secret_name(name) and value:
            value = MASK
        elif "://" in value:
            value = redact_url(value)
        pairs.append((name, value))
    return urlencode(pairs, safe=_SAFE_QUERY_CHARS)


def redact_url(url: str) -> str:
    """`url` fit for a log: no userinfo, no secret query or fragment values.

    A string that is not a URL (a local path) comes back unchanged; one that cannot
    be parsed at all comes back fully masked rather than as it was.
    """
    if not isinstance(url, str):
        return MASK
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = redact_query(parts.query)
    fragment = parts.fragment
    if "=" in fragment:
        fragment = redact_query(fragment)
    redacted = urlunsplit((parts.scheme, netloc, parts.path, query, fragment))
    return _SLACK_TOKEN.sub(rf"\1-{MASK}", redacted)


def redact_text(text: str) -> str:
    """Free text with every URL in it redacted and Slack tokens masked."""
    if "://" in text:
        text = _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
    if "xox" in text:
        text = _SLACK_TOKEN.sub(rf"\1-{MASK}", text)
    return text


# --- emitting ----------------------------------------------------------------------

_FIELDS = "ferry_fields"
_EVENT = "ferry_event"


def event(logger: logging.Logger, name: str, message: str, /, level=logging.INFO, **fields):
    """Log one structured event. Values must already be safe (redact URLs first)."""
    if logger.isEnabledFor(level):
        logger.log(level, message, extra={_EVENT: name, _FIELDS: fields})


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, _EVENT, "log"),
            "message": redact_text(record.getMessage()),
        }
        for key, value in (getattr(record, _FIELDS, None) or {}).items():
            body.setdefault(key, value)
        if record.exc_info:
            body["exception"] = redact_text(self.formatException(record.exc_info))
        return orjson.dumps(body, default=str).decode()


class TextFormatter(logging.Formatter):
    """`time level logger: message key=value ...`, for people reading a terminal."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = redact_text(super().format(record))
        fields = getattr(record, _FIELDS, None)
        if fields:
            line += "".join(
                f" {key}={_text_value(value)}" for key, value in fields.items() if value is not None
            )
        return line

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return super().formatMessage(record).replace("\n", "\\n")


_NEEDS_QUOTES = re.compile(r'[\s"]')


def _text_value(value: Any) -> str:
    text = str(value)
    if not text or _NEEDS_QUOTES.search(text):
        return orjson.dumps(text).decode()
    return text


def formatter(log_format: str) -> logging.Formatter:
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}")
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(log_format: str = "text", stream: IO[str] | None = None) -> logging.Handler:
    """Route every log record (Ferry's and uvicorn's) through one handler on stderr."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # Their debug lines carry full request URLs; keep them out even if someone lowers
    # the root level.
    for chatty in ("urllib3", "httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # No line shows a source file, line or function, so records need not walk the stack
    # for them (the logging HOWTO's "Optimization"): a few per cent of each request's
    # time, as every request and every download state change logs a line.
    logging._srcfile = None
    return handler
