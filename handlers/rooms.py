"""Rocket.Chat's member lists, room roles, rooms.info, rooms.get, subscriptions.get and
users.getPresence."""

from ferry.kernel.statuses import RoomType
from handlers.context import services
from handlers.workspace import list_habits, reader


def _ok(result: dict) -> dict:
    return {**result, "success": True}


def _members(room_type: str, roomId, roomName, offset, count, sort, query, fields) -> dict:
    habits = list_habits(sort, query, fields)
    directory = services().rooms
    return _ok(directory.members(room_type, reader(), roomId, roomName, offset, count, **habits))


def channel_members(
    roomId=None, roomName=None, offset=0, count=50, sort=None, query=None, fields=None
):
    """GET /api/v1/channels.members"""
    return _members(RoomType.CHANNEL, roomId, roomName, offset, count, sort, query, fields)


def group_members(
    roomId=None, roomName=None, offset=0, count=50, sort=None, query=None, fields=None
):
    """GET /api/v1/groups.members"""
    return _members(RoomType.PRIVATE_GROUP, roomId, roomName, offset, count, sort, query, fields)


def im_members(roomId=None, offset=0, count=50, sort=None, query=None, fields=None):
    """GET /api/v1/im.members"""
    return _members(RoomType.DIRECT, roomId, None, offset, count, sort, query, fields)


def channel_roles(roomId=None, roomName=None):
    """GET /api/v1/channels.roles"""
    return _ok(services().rooms.room_roles(RoomType.CHANNEL, reader(), roomId, roomName))


def group_roles(roomId=None, roomName=None):
    """GET /api/v1/groups.roles"""
    return _ok(services().rooms.room_roles(RoomType.PRIVATE_GROUP, reader(), roomId, roomName))


def room_info(roomId=None, roomName=None):
    """GET /api/v1/rooms.info"""
    return _ok(services().rooms.room_info(reader(), roomId, roomName))


def get_rooms(updatedSince=None):
    """GET /api/v1/rooms.get"""
    return _ok(services().subscriptions.rooms(reader(), updatedSince))


def get_subscriptions(updatedSince=None):
    """GET /api/v1/subscriptions.get"""
    return _ok(services().subscriptions.subscriptions(reader(), updatedSince))


def user_presence(userId=None, username=None):
    """GET /api/v1/users.getPresence"""
    return _ok(services().rooms.presence(userId, username))


# Rocket.Chat serves direct messages under both `im.*` and the newer `dm.*` names.
dm_members = im_members
