"""Public server information."""

from ferry import __version__


async def get_info():
    """GET /api/info"""
    return {"success": True, "name": "Ferry", "version": __version__}
