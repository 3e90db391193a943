"""Response builders shared by handlers and the error envelope."""

from __future__ import annotations

from typing import Any

import orjson
from connexion.lifecycle import ConnexionResponse


def json_response(status: int, body: Any, headers: dict | None = None) -> ConnexionResponse:
    """JSON with an explicit mimetype, for operations that can also answer with other types."""
    return ConnexionResponse(
        status_code=status,
        mimetype="application/json",
        body=orjson.dumps(body),
        headers=dict(headers or {}),
    )
