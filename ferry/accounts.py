"""Users, passwords, tokens, roles and the one permission check."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from ferry.kernel.config import Config
from ferry.kernel.errors import (
    PERMISSION_DENIED,
    Forbidden,
    InvalidInput,
    MeteorError,
    NotFound,
    WrongCredentials,
)
from ferry.kernel.ids import iso_from_unix, now_iso, random_id
from ferry.kernel.statuses import Role, UserType
from ferry.kernel.usernames import USERNAME_MAX_LENGTH, is_valid_username
from ferry.login_throttle import LoginThrottle
from ferry.password_policy import check_password
from storage.users import UserRepository

# Rocket.Chat's permission names where it has them; roles map to the permissions they grant.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.ADMIN: frozenset(
        {
            "run-import",
            "view-import-operations",
            "download-files",
            "view-files",
            "upload-files",
            "delete-files",
            "create-user",
            "edit-other-user-info",
            "access-permissions",
            "view-outside-room",
            "view-c-room",
            "view-room-administration",
            "view-statistics",
            # Widen what operations show rather than gate them (see the spec's info).
            "view-all-downloads",
            "manage-all-downloads",
            "view-full-other-user-info",
            "view-livechat-contact",
        }
    ),
    # A team shares the file server: each member may bring files in (the server's
    # --allow-download still decides whether anyone may) and sees only their own.
    # Looks after the shared tree: brings files in, reorganises and deletes them.
    Role.EDITOR: frozenset(
        {
            "download-files",
            "view-files",
            "upload-files",
            "delete-files",
            "view-outside-room",
            "view-c-room",
        }
    ),
    Role.USER: frozenset({"download-files", "view-files", "view-outside-room", "view-c-room"}),
    Role.BOT: frozenset(),
    # Rocket.Chat's other default roles arrive with imported users; Ferry has nothing
    # for most of them to unlock. Omnichannel agents and managers read the contacts.
    **{
        role: frozenset()
        for role in Role
        if role not in (Role.ADMIN, Role.EDITOR, Role.USER, Role.BOT)
    },
    Role.LIVECHAT_AGENT: frozenset({"view-livechat-contact"}),
    Role.LIVECHAT_MANAGER: frozenset({"view-livechat-contact"}),
}
ROLES = tuple(ROLE_PERMISSIONS)
_KEPT_FROM_ROCKET_CHAT = "Kept from Rocket.Chat; grants nothing more in Ferry."
ROLE_DESCRIPTIONS = {role: _KEPT_FROM_ROCKET_CHAT for role in Role} | {
    Role.ADMIN: "Runs imports and downloads and manages users.",
    Role.EDITOR: "Reads files and uploads, moves, renames and deletes them.",
    Role.USER: "Reads files and the imported workspace, and downloads URLs of their own.",
    Role.BOT: "An imported bot account.",
    Role.LIVECHAT_AGENT: "Reads the imported omnichannel contacts.",
    Role.LIVECHAT_MANAGER: "Reads the imported omnichannel contacts.",
}
# Rocket.Chat's roles that hold within one room rather than on the whole server.
ROOM_ROLES = frozenset({Role.OWNER, Role.MODERATOR, Role.LEADER})

# The secret part of a token: 32 random bytes, so guessing is hopeless; only its hash is stored.
_TOKEN_BYTES = 32


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class PasswordHasher:
    """scrypt (memory-hard): n=2**14, r=8, p=1 uses 16 MiB per hash.

    What is hashed is the password's SHA-256 hex digest (scheme `scrypt-sha256`), the
    form Rocket.Chat clients may send instead of the password
    (`{"digest": ..., "algorithm": "sha-256"}`), so both log in against one hash.
    Hashes of the plain password (scheme `scrypt`, written before) still verify plain
    passwords; `outdated` tells the caller to re-hash at the next plain login.
    """

    cost: int = 2**14
    block_size: int = 8
    parallelism: int = 1
    SCHEME = "scrypt-sha256"
    PLAIN_SCHEME = "scrypt"

    @staticmethod
    def digest(password: str) -> str:
        return hashlib.sha256(password.encode()).hexdigest()

    def hash(self, password: str) -> str:
        return self._encode(self.digest(password))

    def _encode(self, secret: str) -> str:
        salt = secrets.token_bytes(16)
        derived = self._derive(secret, salt, self.cost, self.block_size, self.parallelism)
        return "$".join(
            [
                self.SCHEME,
                str(self.cost),
                str(self.block_size),
                str(self.parallelism),
                base64.b64encode(salt).decode(),
                base64.b64encode(derived).decode(),
            ]
        )

    def verify(self, password: str, encoded: str) -> bool:
        """A plain password against a hash of either scheme."""
        scheme = encoded.split("$", 1)[0]
        if scheme == self.PLAIN_SCHEME:
            return self._check(password, encoded, self.PLAIN_SCHEME)
        return self._check(self.digest(password), encoded, self.SCHEME)

    def verify_digest(self, digest: str, encoded: str) -> bool:
        """A SHA-256 hex digest of the password; only a `scrypt-sha256` hash can tell."""
        return self._check(digest.lower(), encoded, self.SCHEME)

    def outdated(self, encoded: str) -> bool:
        return encoded.split("$", 1)[0] != self.SCHEME

    def _check(self, secret: str, encoded: str, wanted_scheme: str) -> bool:
        try:
            scheme, n, r, p, salt, derived = encoded.split("$")
            if scheme != wanted_scheme:
                return False
            expected = base64.b64decode(derived)
            actual = self._derive(secret, base64.b64decode(salt), int(n), int(r), int(p))
        except (ValueError, TypeError):
            return False
        return hmac.compare_digest(expected, actual)

    @staticmethod
    def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
        return hashlib.scrypt(
            password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + 2**20, dklen=32
        )


# Never shown to anyone, the user included: password hashes, what an import left for
# later (`_pendingAvatarUrl`), and the ids the user was imported under, which
# Rocket.Chat strips from its answers too.
PRIVATE_USER_FIELD_PREFIXES = ("password", "_pending", "importIds")


def public_user(user: dict) -> dict:
    """A user as clients see it: Rocket.Chat's fields, never the password hash."""
    shown = {
        key: value for key, value in user.items() if not key.startswith(PRIVATE_USER_FIELD_PREFIXES)
    }
    shown.setdefault("emails", [])
    shown.setdefault("roles", [])
    shown.setdefault("type", UserType.USER)
    shown.setdefault("active", True)
    shown["status"] = "offline"
    shown["canLogIn"] = bool(user.get("password")) and bool(user.get("active", True))
    return shown


# --- what one user sees of another -------------------------------------------------
# Rocket.Chat's projections for a caller without `view-full-other-user-info` looking at
# someone else: `users.info` shows the profile, `users.list` less; never emails, roles,
# import ids, services, dates or whether the account can log in.
FULL_OTHER_USER_INFO = "view-full-other-user-info"
LISTED_USER_FIELDS = ("_id", "username", "name", "status", "active", "type", "avatarETag")
OTHER_USER_FIELDS = (*LISTED_USER_FIELDS, "utcOffset", "statusText", "bio")


def user_as_seen_by(
    user: dict, viewer: dict, *, fields: tuple[str, ...] = OTHER_USER_FIELDS
) -> dict:
    """`user` as `viewer` may see them: whole to themself, whole but for login
    `services` to holders of `view-full-other-user-info`, else only `fields`."""
    shown = public_user(user)
    if user["_id"] == viewer["_id"]:
        return shown
    if FULL_OTHER_USER_INFO in Accounts.permissions_of(viewer):
        shown.pop("services", None)
        return shown
    return {key: shown[key] for key in fields if key in shown}


class Accounts:
    def __init__(
        self,
        users: UserRepository,
        hasher: PasswordHasher,
        throttle: LoginThrottle | None = None,
        *,
        token_ttl: float = Config.token_ttl,
        clock: Callable[[], float] = time.time,
    ):
        self.users = users
        self.hasher = hasher
        self.throttle = throttle or LoginThrottle()
        self.token_ttl = token_ttl
        self.clock = clock

    def startup(self) -> None:
        """Tokens stored before tokens expired get the full lifetime from now: an upgrade
        logs nobody out, and leaves no token valid forever."""
        self.users.set_missing_token_expiry(iso_from_unix(self.clock() + self.token_ttl))

    # --- authentication -----------------------------------------------------

    def login(
        self,
        identity: str,
        password: str | None = None,
        client_ip: str | None = None,
        *,
        digest: str | None = None,
    ) -> tuple[dict, str]:
        """Returns (user, new token) for a username or email and its password, or the
        password's SHA-256 hex `digest` (Rocket.Chat clients may send either).

        Repeated failures are throttled per account and `client_ip` (see
        ferry/login_throttle.py); a refused attempt is not checked at all. A plain login
        against a hash of the plain password re-hashes it, so that digest logins work
        from then on.

        Raises:
            LoginBlocked: too many recent failures for this account or from this address.
            WrongCredentials: unknown user, wrong password, inactive or password-less user.
        """
        address = client_ip or "unknown"
        user = self.users.by_username(identity) or self.users.by_email(identity)
        # Username and email of one user share one count; unknown names count by name.
        account = f"id:{user['_id']}" if user else f"name:{identity.casefold()}"
        self.throttle.check(account, address)
        encoded = (user or {}).get("password")
        # Verify even for unknown users so that timing does not reveal which names exist.
        checked = encoded or self._decoy_hash()
        if digest is not None:
            valid = self.hasher.verify_digest(digest, checked)
        else:
            valid = self.hasher.verify(password or "", checked)
        if not (user and encoded and valid and user.get("active", True)):
            self.throttle.failed(account, address)
            raise WrongCredentials("Unauthorized")
        self.throttle.succeeded(account, address)
        if digest is None and self.hasher.outdated(encoded):
            self.users.update(user["_id"], {"password": self.hasher.hash(password or "")})
        return user, self.issue_token(user["_id"])

    def resume(self, token: str, client_ip: str | None = None) -> tuple[dict, str]:
        """Rocket.Chat's `{"resume": token}` login: the token's user and the same token.

        Wrong tokens count as failures from `client_ip`, as wrong passwords do.
        """
        address = client_ip or "unknown"
        account = "resume"
        self.throttle.check(account, address)
        user = self.user_for_token(token)
        if user is None:
            self.throttle.failed(account, address)
            raise WrongCredentials("Unauthorized")
        return user, token

    _decoy: str | None = None

    def _decoy_hash(self) -> str:
        if Accounts._decoy is None:
            Accounts._decoy = self.hasher.hash(secrets.token_hex(8))
        return Accounts._decoy

    def issue_token(self, user_id: str) -> str:
        return self.issue_session(user_id)[0]

    def issue_session(self, user_id: str) -> tuple[str, str]:
        """A new token for `user_id` and when it expires (ISO 8601)."""
        now = self.clock()
        token = secrets.token_urlsafe(_TOKEN_BYTES)
        expires = iso_from_unix(now + self.token_ttl)
        self.users.add_token(hash_token(token), user_id, iso_from_unix(now), expires)
        return token, expires

    def user_for_token(self, token: str, user_id: str | None = None) -> dict | None:
        """The active user owning `token` (and matching `user_id` when given), else None.

        An expired token is refused; it is removed at its owner's next login.
        """
        stored = self.users.token(hash_token(token))
        if stored is None or (user_id is not None and stored["userId"] != user_id):
            return None
        # Only tokens from before expiry existed lack one, until startup() dates them.
        expires = stored.get("expiresAt")
        if expires is not None and expires <= iso_from_unix(self.clock()):
            return None
        user = self.users.get(stored["userId"])
        if user is None or not user.get("active", True):
            return None
        return user

    def logout(self, token: str) -> None:
        self.users.revoke_token(hash_token(token))

    def logout_other_clients(self, user_id: str) -> tuple[str, str]:
        """Rocket.Chat's logoutOtherClients: a new token, and every other one revoked
        (the one the request came with too). Returns (token, its expiry)."""
        token, expires = self.issue_session(user_id)
        self.users.revoke_tokens_of(user_id, keep=hash_token(token))
        return token, expires

    # --- authorization ------------------------------------------------------

    @staticmethod
    def permissions_of(user: dict) -> frozenset[str]:
        granted: set[str] = set()
        for role in user.get("roles") or []:
            granted |= ROLE_PERMISSIONS.get(role, frozenset())
        return frozenset(granted)

    def authorize(self, user: dict, permission: str | None) -> None:
        """The one permission check every protected operation goes through.

        Raises:
            Forbidden: the user's roles do not grant `permission`.
        """
        if permission is not None and permission not in self.permissions_of(user):
            raise Forbidden(PERMISSION_DENIED)

    # --- users --------------------------------------------------------------

    def create_user(
        self,
        username: str,
        *,
        email: str | None,
        name: str | None,
        password: str | None,
        roles: list[str] | None = None,
        active: bool = True,
        verified: bool = False,
    ) -> dict:
        """Raises MeteorError `error-field-unavailable` when the username or email is taken,
        `error-password-policy-not-met-*` for a weak password."""
        if not is_valid_username(username):
            raise InvalidInput(
                f"A username has 1 to {USERNAME_MAX_LENGTH} letters, digits, '.', '_' or '-'."
            )
        if password is not None:
            check_password(password)
        if self.users.by_username(username):
            raise MeteorError("error-field-unavailable", f"{username} is already in use :(")
        if email and self.users.by_email(email):
            raise MeteorError("error-field-unavailable", f"{email} is already in use :(")
        now = now_iso()
        user = {
            "_id": random_id(),
            "username": username,
            "name": name or username,
            "emails": [{"address": email, "verified": verified}] if email else [],
            "roles": list(dict.fromkeys([Role.USER] if roles is None else roles)),
            "active": active,
            "type": UserType.BOT if Role.BOT in (roles or []) else UserType.USER,
            "createdAt": now,
            "_updatedAt": now,
        }
        if password is not None:
            user["password"] = self.hasher.hash(password)
        self.users.insert(user)
        return user

    def find_user(
        self,
        *,
        user_id: str | None = None,
        username: str | None = None,
        import_id: str | None = None,
    ) -> dict:
        """By id, else username, else an id the user was imported under. Raises
        InvalidInput without a key, NotFound for an unknown user."""
        if user_id is None and username is None and import_id is None:
            raise InvalidInput('The "userId" or "username" param is required')
        if user_id is not None:
            user = self.users.get(user_id)
        elif username is not None:
            user = self.users.by_username(username)
        else:
            found = self.users.id_for_import_id(import_id)
            user = self.users.get(found) if found else None
        if user is None:
            raise NotFound("User not found.", error_type="error-invalid-user")
        return user

    def update_user(self, user_id: str, changes: dict, *, session: str | None = None) -> dict:
        """A new password revokes the user's tokens but `session` (the token the change
        was made with, kept when it is the user's own); deactivating revokes them all.

        Raises MeteorError `error-password-policy-not-met-*` for a weak password.
        """
        user = self.find_user(user_id=user_id)
        fields: dict = {"_updatedAt": now_iso()}
        if "name" in changes:
            fields["name"] = changes["name"]
        if "email" in changes:
            other = self.users.by_email(changes["email"])
            if other and other["_id"] != user_id:
                raise MeteorError(
                    "error-field-unavailable", f"{changes['email']} is already in use :("
                )
            fields["emails"] = [{"address": changes["email"], "verified": False}]
        if "password" in changes:
            check_password(changes["password"])
            fields["password"] = self.hasher.hash(changes["password"])
        if "active" in changes:
            if not changes["active"]:
                self._keep_an_admin(user, losing="active")
            fields["active"] = changes["active"]
        updated = self.users.update(user["_id"], fields)
        if changes.get("active") is False:
            self.users.revoke_tokens_of(user["_id"])
        elif "password" in changes:
            keep = hash_token(session) if session is not None else None
            self.users.revoke_tokens_of(user["_id"], keep=keep)
        return updated

    def list_users(self, offset: int, count: int | None) -> tuple[list[dict], int]:
        return self.users.page(offset, count)

    def set_password(self, username: str, password: str) -> dict:
        """Sets the password and revokes every token of the user."""
        user = self.find_user(username=username)
        return self.update_user(user["_id"], {"password": password})

    def change_role(self, username: str, role: str, *, grant: bool) -> dict:
        """Adds or removes `role`; returns the role object Rocket.Chat answers with."""
        if role not in ROLE_PERMISSIONS:
            raise MeteorError("error-invalid-roleId", "This role does not exist")
        user = self.find_user(username=username)
        roles = list(user.get("roles") or [])
        if grant and role not in roles:
            roles.append(role)
        elif not grant and role in roles:
            if role == Role.ADMIN:
                self._keep_an_admin(user, losing=Role.ADMIN)
            roles.remove(role)
        self.users.update(user["_id"], {"roles": roles, "_updatedAt": now_iso()})
        return self.role(role)

    @classmethod
    def roles(cls) -> list[dict]:
        """Every role Ferry knows, as Rocket.Chat's roles.list shows them."""
        return [cls.role(name) for name in ROLE_DESCRIPTIONS]

    @staticmethod
    def role(name: str) -> dict:
        return {
            "_id": name,
            "name": name,
            "scope": "Subscriptions" if name in ROOM_ROLES else "Users",
            "protected": True,
            "description": ROLE_DESCRIPTIONS[name],
        }

    def _keep_an_admin(self, user: dict, *, losing: str) -> None:
        if Role.ADMIN not in (user.get("roles") or []) or not user.get("active", True):
            return
        if self.users.count_active_admins() <= 1:
            raise MeteorError(
                "error-action-not-allowed",
                "Leaving the app without an active admin is not allowed",
                details={"method": f"remove {losing}"},
            )

    def ensure_admin(self, username: str | None, password: str | None) -> tuple[dict, str] | None:
        """On first start, create an admin; returns (user, password) when one was made.

        A given `password` must pass the password rule (MeteorError otherwise); the one
        generated without it does (24 random characters).
        """
        if self.users.count_active_admins() > 0:
            return None
        username = username or "admin"
        password = password or secrets.token_urlsafe(18)
        check_password(password)
        existing = self.users.by_username(username)
        if existing:
            roles = list(dict.fromkeys([*existing.get("roles", []), Role.ADMIN]))
            fields = {"roles": roles, "active": True, "password": self.hasher.hash(password)}
            updated = self.users.update(existing["_id"], fields)
            self.users.revoke_tokens_of(existing["_id"])
            return updated, password
        user = self.create_user(
            username, email=None, name="Administrator", password=password, roles=[Role.ADMIN]
        )
        return user, password
