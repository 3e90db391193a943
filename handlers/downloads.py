"""The download API beyond the file routes: the global list, one download, cancel,
pause and resume."""

from handlers.context import current_user, services


async def list_active_downloads():
    """GET /api/v1/downloads"""
    return {"downloads": services().transfers.active(current_user())}


def get_download(id: str):
    """GET /api/v1/downloads/{id}"""
    return {"download": services().transfers.get(current_user(), id), "success": True}


def cancel_download(id: str):
    """DELETE /api/v1/downloads/{id}"""
    return {"download": services().transfers.cancel(current_user(), id), "success": True}


def pause_download(id: str):
    """POST /api/v1/downloads/{id}/pause"""
    return {"download": services().transfers.pause(current_user(), id), "success": True}


def resume_download(id: str):
    """POST /api/v1/downloads/{id}/resume"""
    return {**services().transfers.resume(current_user(), id), "success": True}
