"""The download API beyond the file routes: batches, the global list, one download, cancel,
pause and resume."""

from handlers.context import current_user, services


async def list_active_downloads():
    """GET /api/v1/downloads"""
    return {"downloads": services().transfers.active(current_user())}


def start_downloads(body: dict):
    """POST /api/v1/downloads"""
    started = services().transfers.start_batch(current_user(), body["items"])
    return {"downloads": started, "success": True}


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
    record, restarted = services().transfers.resume(current_user(), id)
    return {"download": record, "restarted": restarted, "success": True}


def list_download_history(status=None, offset: int = 0, count: int = 50):
    """GET /api/v1/downloads/history"""
    history = services().transfers.history(current_user())
    if status is not None:
        history = [record for record in history if record["status"] == status]
    page = history[offset : offset + count]
    return {
        "success": True,
        "history": page,
        "count": len(page),
        "offset": offset,
        "total": len(history),
    }
