"""Rocket.Chat's chat.* reads: one message, a thread's replies, a room's threads."""

from handlers.context import services
from handlers.workspace import reader


def _ok(result: dict) -> dict:
    return {**result, "success": True}


def get_message(msgId=None):
    """GET /api/v1/chat.getMessage"""
    return _ok(services().messages.message(reader(), msgId))


def get_thread_messages(tmid=None, offset=0, count=50, sort=None, query=None, fields=None):
    """GET /api/v1/chat.getThreadMessages"""
    return _ok(
        services().messages.thread_messages(
            reader(), tmid, offset, count, sort=sort, query=query, fields=fields
        )
    )


def get_threads_list(
    rid=None, type=None, text=None, offset=0, count=50, sort=None, query=None, fields=None
):
    """GET /api/v1/chat.getThreadsList"""
    return _ok(
        services().messages.threads(
            reader(), rid, type, text, offset, count, sort=sort, query=query, fields=fields
        )
    )
