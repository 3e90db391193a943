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


# --- bounded, single-line output ----------------------------------------------------

# A log line holds at most this many characters; a longer one is cut and ends in "…".
LINE_LIMIT = 8192
ELLIPSIS = "…"
# C0 and C1 control characters and the Unicode line breaks: a client's text with them
# could start a forged log line or drive the terminal reading the log.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")
# What JSON leaves unescaped inside strings but a terminal may act on.
_JSON_UNESCAPED_CONTROL = re.compile(r"[\x7f-\x9f\u2028\u2029]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    char = match.group()
    named = _NAMED_ESCAPES.get(char)
    if named:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with its control characters written as escapes (`\\n`, `\\x1b`)."""
    pattern = _CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL
    return pattern.sub(_escape, text)


def bounded(text: str, limit: int = LINE_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


def _bounded_tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else ELLIPSIS + text[-(limit - len(ELLIPSIS)) :]


# Kept whole when a JSON line is cut down to size.
_FIXED_KEYS = ("time", "level", "logger", "event")


def _json_dumps(body: dict) -> str:
    line = orjson.dumps(body, default=str).decode()
    return _JSON_UNESCAPED_CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", line)


def _cut_value(key: str, value: Any, cap: int) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else str(value)
    if len(text) <= cap:
        return value
    # A traceback's last lines say what went wrong; other values read from the start.
    return _bounded_tail(text, cap) if key == "exception" else bounded(text, cap)


def bounded_json_line(body: dict) -> str:
    """`body` as one JSON line of at most LINE_LIMIT characters: the longest values are
    cut (each ending in "…") until it fits."""
    line = _json_dumps(body)
    cap = LINE_LIMIT // 2
    while len(line) > LINE_LIMIT and cap >= 16:
        body = {
            key: value if key in _FIXED_KEYS else _cut_value(key, value, cap)
            for key, value in body.items()
        }
        line = _json_dumps(body)
        cap //= 2
    if len(line) > LINE_LIMIT:
        kept = {key: body[key] for key in _FIXED_KEYS if key in body}
        kept["message"] = bounded(str(body.get("message", "")), 256)
        kept["truncated"] = True
        line = _json_dumps(kept)
    return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line, at most LINE_LIMIT characters long."""

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
        return bounded_json_line(body)


class TextFormatter(logging.Formatter):
    """`time level logger: message key=value ...`, for people reading a terminal.

    The line is at most LINE_LIMIT characters with its control characters escaped; a
    traceback follows on indented lines of its own, each escaped and bounded the same way.
    """

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        line = redact_text(self.formatMessage(record))
        fields = getattr(record, _FIELDS, None)
        if fields:
            line += "".join(
                f" {key}={_text_value(value)}" for key, value in fields.items() if value is not None
            )
        line = bounded(escape_controls(line))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        for extra in (record.exc_text, record.stack_info and self.formatStack(record.stack_info)):
            if extra:
                text = escape_controls(redact_text(extra), keep_newlines=True)
                # Indented, so that no text inside a traceback (an exception's message
                # quoting a request) can pass for a log line of its own.
                line += "".join(f"\n  {bounded(part)}" for part in text.split("\n"))
        return line


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
