"""Response builders for handlers."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


def json_response(status: int, body: Any, headers: dict | None = None) -> Response:
    """JSON with an explicit type, for operations that can also answer with other types."""
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def empty_response(status: int, headers: dict | None = None) -> Response:
    return Response(status_code=status, headers=headers)
