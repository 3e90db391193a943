"""Users and roles (Rocket.Chat's shapes)."""

from ferry.accounts import public_user
from ferry.kernel.errors import InvalidInput
from handlers.context import current_principal, current_user, services


def create_user(body: dict):
    """POST /api/v1/users.create"""
    user = services().accounts.create_user(
        body["username"],
        email=body["email"],
        name=body["name"],
        password=body["password"],
        roles=body.get("roles"),
        active=body.get("active", True),
        verified=body.get("verified", False),
    )
    return {"user": public_user(user), "success": True}


def update_user(body: dict):
    """POST /api/v1/users.update"""
    # A user who changes their own password stays logged in with this token only.
    user = services().accounts.update_user(
        body["userId"], body["data"], session=current_principal()["token"]
    )
    return {"user": public_user(user), "success": True}


def get_user(
    userId: str | None = None,
    username: str | None = None,
    importId: str | None = None,
    includeUserRooms: bool = False,
):
    """GET /api/v1/users.info"""
    found = services().user_reads.info(
        current_user(),
        user_id=userId,
        username=username,
        import_id=importId,
        include_rooms=includeUserRooms,
    )
    return {**found, "success": True}


def list_users(offset=0, count=50, sort=None, query=None, fields=None):
    """GET /api/v1/users.list"""
    page = services().user_reads.list(
        current_user(), offset, count, sort=sort, query=query, fields=fields
    )
    return {**page, "success": True}


def _role_name(body: dict) -> str:
    role = body.get("roleName") or body.get("roleId")
    if role is None:
        raise InvalidInput('The "roleName" or "roleId" param is required')
    return role


def add_user_to_role(body: dict):
    """POST /api/v1/roles.addUserToRole"""
    role = services().accounts.change_role(body["username"], _role_name(body), grant=True)
    return {"role": role, "success": True}


def remove_user_from_role(body: dict):
    """POST /api/v1/roles.removeUserFromRole"""
    role = services().accounts.change_role(body["username"], _role_name(body), grant=False)
    return {"role": role, "success": True}


def list_roles():
    """GET /api/v1/roles.list"""
    return {"roles": services().accounts.roles(), "success": True}


def users_in_role(role: str, roomId=None, offset=0, count=50):
    """GET /api/v1/roles.getUsersInRole"""
    return {**services().role_members.users_in_role(role, roomId, offset, count), "success": True}
