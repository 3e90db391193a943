"""Public server information, health, and Prometheus metrics."""

from starlette.responses import Response

from ferry import __version__
from ferry.kernel.statuses import HealthStatus
from ferry.ops.telemetry import METRICS_CONTENT_TYPE
from handlers.context import services


async def get_info():
    """GET /api/info"""
    return {"success": True, "name": "Ferry", "version": __version__}


async def get_info_v1():
    """GET /api/v1/info"""
    return {"info": {"version": __version__}, "success": True}


async def get_health():
    """GET /api/v1/health: 200 when ok, 503 when degraded (the data dir is not writable)."""
    health = services().health()
    return health, 200 if health["status"] == HealthStatus.OK else 503


async def get_metrics():
    """GET /api/v1/metrics (an admin, or the --metrics-token as a bearer token)"""
    return Response(services().telemetry.render(), media_type=METRICS_CONTENT_TYPE)
