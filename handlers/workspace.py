"""Rocket.Chat's room endpoints over the imported workspace."""

from ferry.chat.reads import Reader
from handlers.context import current_user, services


def _ok(result: dict) -> dict:
    return {**result, "success": True}


def reader() -> Reader:
    """The caller, as the room rules see them."""
    user = current_user()
    return Reader(user["_id"], services().accounts.permissions_of(user))


def list_habits(sort, query, fields) -> dict:
    """Rocket.Chat's `sort`, `query` and `fields` texts, as the list reads take them."""
    return {"sort": sort, "query": query, "fields": fields}


def list_channels(offset=0, count=50, sort=None, query=None, fields=None):
    """GET /api/v1/channels.list"""
    workspace = services().workspace
    return _ok(workspace.channels_list(offset, count, **list_habits(sort, query, fields)))


def list_groups(offset=0, count=50, sort=None, query=None, fields=None):
    """GET /api/v1/groups.list"""
    workspace = services().workspace
    return _ok(workspace.groups_list(reader(), offset, count, **list_habits(sort, query, fields)))


def list_all_groups(offset=0, count=50, sort=None, query=None, fields=None):
    """GET /api/v1/groups.listAll"""
    workspace = services().workspace
    return _ok(workspace.groups_list_all(offset, count, **list_habits(sort, query, fields)))


def list_ims(offset=0, count=50, sort=None, query=None, fields=None):
    """GET /api/v1/im.list"""
    workspace = services().workspace
    return _ok(workspace.im_list(reader(), offset, count, **list_habits(sort, query, fields)))


def list_all_ims(offset=0, count=50, sort=None, query=None, fields=None):
    """GET /api/v1/im.list.everyone"""
    workspace = services().workspace
    return _ok(workspace.im_list_everyone(offset, count, **list_habits(sort, query, fields)))


# Rocket.Chat serves direct messages under both `im.*` and the newer `dm.*` names.
list_dms = list_ims
list_all_dms = list_all_ims


def channel_info(roomId: str | None = None, roomName: str | None = None):
    """GET /api/v1/channels.info"""
    return _ok(services().workspace.channel_info(reader(), roomId, roomName))


def group_info(roomId: str | None = None, roomName: str | None = None):
    """GET /api/v1/groups.info"""
    return _ok(services().workspace.group_info(reader(), roomId, roomName))


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
    sort=None,
    **connexion_context,
):
    # `unreads` is accepted for Rocket.Chat clients; Ferry keeps no read state.
    # `connexion_context` swallows the `user` and `token_info` Connexion adds for **kwargs.
    return _ok(
        services().workspace.history(
            room_type,
            reader(),
            roomId,
            roomName,
            latest=latest,
            oldest=oldest,
            inclusive=inclusive,
            offset=offset,
            count=count,
            show_thread_messages=showThreadMessages,
            with_totals=True,
            sort=sort,
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
