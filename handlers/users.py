"""Users and roles (Rocket.Chat's shapes)."""

from ferry.accounts import LISTED_USER_FIELDS, public_user, user_as_seen_by
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


def get_user(userId: str | None = None, username: str | None = None):
    """GET /api/v1/users.info"""
    user = services().accounts.find_user(user_id=userId, username=username)
    return {"user": user_as_seen_by(user, current_user()), "success": True}


def list_users(offset: int = 0, count: int = 50):
    """GET /api/v1/users.list"""
    users, total = services().accounts.list_users(offset, count)
    viewer = current_user()
    return {
        "users": [user_as_seen_by(u, viewer, fields=LISTED_USER_FIELDS) for u in users],
        "count": len(users),
        "offset": offset,
        "total": total,
        "success": True,
    }


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
