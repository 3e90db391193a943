"""Browser sessions: a cookie holding a normal Ferry token, and a CSRF token derived from it.

The cookie is read only by the /ui/ routes (the JSON API reads headers alone), so a
cross-site request can never use it to change anything through the API. Forms carry
the CSRF token, an HMAC of the session token under a key that lives as long as the
server process: an attacker without the cookie cannot compute it, and signing out (which
revokes the token) retires it with the session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

COOKIE_NAME = "ferry_session"
CSRF_FIELD = "csrf_token"


class Sessions:
    def __init__(self, accounts):
        self.accounts = accounts
        self._key = secrets.token_bytes(32)

    def user_of(self, request: Request) -> tuple[dict, str] | None:
        """(user, token) of the signed-in browser, or None."""
        token = request.cookies.get(COOKIE_NAME)
        if not token:
            return None
        user = self.accounts.user_for_token(token)
        return (user, token) if user is not None else None

    def csrf_token(self, session_token: str) -> str:
        return hmac.new(self._key, session_token.encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, session_token: str, submitted: str | None) -> bool:
        return bool(submitted) and hmac.compare_digest(
            self.csrf_token(session_token), str(submitted)
        )

    @staticmethod
    def set_cookie(response: Response, request: Request, token: str, max_age: int) -> None:
        response.set_cookie(
            COOKIE_NAME,
            token,
            max_age=max_age,
            path="/ui",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    @staticmethod
    def clear_cookie(response: Response, request: Request) -> None:
        response.delete_cookie(
            COOKIE_NAME,
            path="/ui",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
