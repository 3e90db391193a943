"""Headers that keep answers safe in a browser: no framing, no type sniffing, no caching
of private answers, and served user files that can never run as part of Ferry's origin.

Every answer carries `X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff` and a
Content-Security-Policy with `frame-ancestors 'none'`. Every answer except the public
documents below carries `Cache-Control: no-store`: answers to logged-in users and the
login answer (which holds a token) must not stay in a browser's or a proxy's cache.
A served file gets a sandboxing policy, and a type a browser would render or run
(HTML, SVG, XML, scripts, anything not on the short list of passive types) is sent as
an attachment, so an uploaded page never executes with the API's cookies or origin.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.datastructures import MutableHeaders

# Where Connexion serves the Swagger UI and the spec (handlers/app.py passes these).
SWAGGER_UI_PATH = "/api/v1/ui"
SPEC_JSON_PATH = "/api/v1/openapi.json"

# Public documents the same for everyone: caches may keep them, as they always could.
CACHEABLE_PATHS = frozenset({"/api/info", "/api/v1/health", SPEC_JSON_PATH, "/api/v1/openapi.yaml"})

NO_STORE = "no-store"
# JSON answers load nothing and run nothing.
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
# The Swagger UI runs its own scripts and styles; it may only not be framed.
SWAGGER_UI_POLICY = "frame-ancestors 'none'"
# A user's file: no scripts, no plugins, no same-origin access, even when opened inline.
FILE_POLICY = "default-src 'none'; sandbox; frame-ancestors 'none'"

# Media types a browser shows without running anything in them; every other type of a
# served file (text/html, image/svg+xml, XML, JavaScript, unknown ones) is an attachment.
PASSIVE_TYPES = frozenset({"text/plain", "text/csv", "text/markdown", "application/json"})
PASSIVE_FAMILIES = ("image/", "audio/", "video/")
ACTIVE_IMAGE_TYPES = frozenset({"image/svg+xml"})

# RFC 8187 attr-char beyond letters, digits and "-._~" (which quote() always keeps).
_ATTR_CHAR_EXTRAS = "!#$&+^`|"


def is_passive(media_type: str | None) -> bool:
    """Whether a browser may show a file of this type inline without running anything."""
    if not media_type:
        return False
    media_type = media_type.split(";", 1)[0].strip().lower()
    if media_type in ACTIVE_IMAGE_TYPES:
        return False
    return media_type in PASSIVE_TYPES or media_type.startswith(PASSIVE_FAMILIES)


def content_disposition(disposition: str, filename: str) -> str:
    """`attachment; filename="..."; filename*=UTF-8''...` as RFC 6266 recommends: an
    ASCII fallback any client reads, and the exact name for those that read RFC 8187."""
    fallback = "".join(
        ch if " " <= ch <= "~" and ch not in '"\\' else "_" for ch in filename
    ).strip()
    encoded = quote(filename, safe=_ATTR_CHAR_EXTRAS)
    return f"{disposition}; filename=\"{fallback or 'file'}\"; filename*=UTF-8''{encoded}"


def served_file_headers(filename: str, media_type: str | None, *, attachment: bool) -> dict:
    """The headers of a served user file: the sandbox always, and an attachment
    disposition when asked for or when the type is not passive."""
    headers = {"Content-Security-Policy": FILE_POLICY}
    if attachment or not is_passive(media_type):
        headers["Content-Disposition"] = content_disposition("attachment", filename)
    return headers


def _is_cacheable(scope) -> bool:
    if scope.get("method") not in ("GET", "HEAD"):
        return False
    path = scope.get("path", "")
    return path in CACHEABLE_PATHS or _is_swagger_ui(path)


def _is_swagger_ui(path: str) -> bool:
    return path == SWAGGER_UI_PATH or path.startswith(SWAGGER_UI_PATH + "/")


class ResponseHeadersMiddleware:
    """Adds the browser-safety headers to every HTTP answer, error answers included."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = _is_cacheable(scope)
        policy = SWAGGER_UI_POLICY if _is_swagger_ui(scope.get("path", "")) else API_POLICY

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Frame-Options"] = "DENY"
                headers["X-Content-Type-Options"] = "nosniff"
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = policy
                if not cacheable:
                    headers["Cache-Control"] = NO_STORE
            await send(message)

        await self.app(scope, receive, send_with_headers)
