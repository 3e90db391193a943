"""The download API beyond the file routes: the global list, one download, cancel."""

from handlers.context import services


async def list_active_downloads():
    """GET /api/v1/downloads"""
    return {"downloads": services().transfers.active()}


def get_download(id: str):
    """GET /api/v1/downloads/{id}"""
    return {"download": services().transfers.get(id), "success": True}


def cancel_download(id: str):
    """DELETE /api/v1/downloads/{id}"""
    return {"download": services().transfers.cancel(id), "success": True}
