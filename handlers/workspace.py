"""Rocket.Chat's room endpoints over the imported workspace."""

from handlers.context import services


def _ok(result: dict) -> dict:
    return {**result, "success": True}


def list_channels(offset: int = 0, count: int = 50):
    """GET /api/v1/channels.list"""
    return _ok(services().workspace.channels_list(offset, count))


def list_groups(offset: int = 0, count: int = 50):
    """GET /api/v1/groups.list"""
    return _ok(services().workspace.groups_list(offset, count))


def list_ims(offset: int = 0, count: int = 50):
    """GET /api/v1/im.list"""
    return _ok(services().workspace.im_list(offset, count))


# Rocket.Chat serves direct messages under both `im.*` and the newer `dm.*` names.
list_dms = list_ims


def channel_info(roomId: str | None = None, roomName: str | None = None):
    """GET /api/v1/channels.info"""
    return _ok(services().workspace.channel_info(roomId, roomName))


def group_info(roomId: str | None = None, roomName: str | None = None):
    """GET /api/v1/groups.info"""
    return _ok(services().workspace.group_info(roomId, roomName))


def _history(
    room_type: str,
    roomId=None,
    roomName=None,
    latest=None,
    oldest=None,
    inclusive=False,
    showThreadMessages=False,
    unreads=None,
    offset=0,
    count=20,
    **connexion_context,
):
    # `unreads` is accepted for Rocket.Chat clients; Ferry keeps no read state.
    # `connexion_context` swallows the `user` and `token_info` Connexion adds for **kwargs.
    return _ok(
        services().workspace.history(
            room_type,
            roomId,
            roomName,
            latest=latest,
            oldest=oldest,
            inclusive=inclusive,
            offset=offset,
            count=count,
            show_thread_messages=showThreadMessages,
            with_totals=True,
        )
    )


# Connexion hands every validated query parameter to a handler that takes **kwargs.
def channel_history(**query):
    """GET /api/v1/channels.history"""
    return _history("c", **query)


def group_history(**query):
    """GET /api/v1/groups.history"""
    return _history("p", **query)


def im_history(**query):
    """GET /api/v1/im.history"""
    return _history("d", **query)


dm_history = im_history
