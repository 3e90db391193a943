"""Avatars at Rocket.Chat's paths: `/avatar/{username}` and `users.getAvatar`."""

from pathlib import Path

from starlette.responses import FileResponse, Response

from ferry.chat.room_members import UserNotFound
from handlers.context import services


def get_avatar(username: str):
    """GET /avatar/{username}"""
    content, media_type = services().avatars.for_username(username)
    if isinstance(content, Path):
        return FileResponse(content, media_type=media_type)
    return Response(content, media_type=media_type)


def get_user_avatar(userId=None, username=None):
    """GET /api/v1/users.getAvatar: the user's avatar, as /avatar/{username} serves it."""
    name = services().avatars.username_of(userId, username)
    if not name:
        raise UserNotFound()
    return get_avatar(name)
