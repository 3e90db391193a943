"""Users and their auth tokens, with in-memory indexes for the lookups every request makes."""

from __future__ import annotations

from collections.abc import Iterable

from tinydb.table import Document

from storage.store import Store, detached


def _username_key(username: str) -> str:
    return username.casefold()


def _email_key(address: str) -> str:
    return address.strip().casefold()


class UserRepository:
    """Users live in `accounts.json`: table `users` keyed by user id, `tokens` by token hash."""

    def __init__(self, store: Store):
        self._store = store
        self._by_username: dict[str, str] = {}
        self._by_email: dict[str, str] = {}
        self._by_import_id: dict[str, str] = {}
        with store.lock:
            for user in self._users.all():
                self._index(user)

    @property
    def _users(self):
        return self._store.db("accounts").table("users")

    @property
    def _tokens(self):
        return self._store.db("accounts").table("tokens")

    def _index(self, user: dict) -> None:
        user_id = user["_id"]
        if user.get("username"):
            self._by_username[_username_key(user["username"])] = user_id
        for email in user.get("emails") or []:
            self._by_email.setdefault(_email_key(email["address"]), user_id)
        for import_id in user.get("importIds") or []:
            self._by_import_id.setdefault(import_id, user_id)

    def _unindex(self, user: dict) -> None:
        user_id = user["_id"]
        for index in (self._by_username, self._by_email, self._by_import_id):
            for key in [k for k, v in index.items() if v == user_id]:
                del index[key]

    # --- users -------------------------------------------------------------

    def insert_many(self, users: Iterable[dict]) -> None:
        """Insert new users in one write; each must carry a unique `_id`."""
        users = list(users)
        if not users:
            return
        with self._store.lock:
            self._users.insert_multiple(Document(dict(u), doc_id=u["_id"]) for u in users)
            for user in users:
                self._index(user)

    def insert(self, user: dict) -> None:
        self.insert_many([user])

    def get(self, user_id: str) -> dict | None:
        with self._store.lock:
            return detached(self._users.get(doc_id=user_id))

    def by_username(self, username: str) -> dict | None:
        with self._store.lock:
            user_id = self._by_username.get(_username_key(username))
            return self.get(user_id) if user_id else None

    def by_email(self, address: str) -> dict | None:
        with self._store.lock:
            user_id = self._by_email.get(_email_key(address))
            return self.get(user_id) if user_id else None

    def id_for_import_id(self, import_id: str) -> str | None:
        with self._store.lock:
            return self._by_import_id.get(import_id)

    def update(self, user_id: str, fields: dict) -> dict | None:
        """Replace the given top-level fields; returns the updated user, None if unknown."""
        return self.update_many({user_id: fields}).get(user_id)

    def update_many(self, changes: dict[str, dict]) -> dict[str, dict]:
        """Apply `{user_id: fields}` in one write; returns the users that exist, updated."""
        with self._store.lock:
            updated: dict[str, dict] = {}
            for user_id, fields in changes.items():
                current = self._users.get(doc_id=user_id)
                if current is None:
                    continue
                merged = dict(current)
                merged.update(fields)
                updated[user_id] = merged
            if not updated:
                return {}
            self._users.update(lambda doc: doc.update(changes[doc["_id"]]), doc_ids=list(updated))
            for user in updated.values():
                self._unindex(user)
                self._index(user)
            return {user_id: detached(user) for user_id, user in updated.items()}

    def delete(self, user_id: str) -> bool:
        with self._store.lock:
            current = self._users.get(doc_id=user_id)
            if current is None:
                return False
            self._users.remove(doc_ids=[user_id])
            self._unindex(dict(current))
            stale = [t.doc_id for t in self._tokens.all() if t["userId"] == user_id]
            if stale:
                self._tokens.remove(doc_ids=stale)
            return True

    def page(self, offset: int, count: int | None) -> tuple[list[dict], int]:
        """Users ordered by creation time, then id (all from `offset` when `count` is
        None); returns (page, total)."""
        with self._store.lock:
            users = sorted(self._users.all(), key=lambda u: (u.get("createdAt", ""), u["_id"]))
            end = None if count is None else offset + count
            return [detached(u) for u in users[offset:end]], len(users)

    def count(self) -> int:
        with self._store.lock:
            return len(self._users)

    def count_active_admins(self) -> int:
        with self._store.lock:
            return sum(
                1
                for u in self._users.all()
                if "admin" in (u.get("roles") or []) and u.get("active", True)
            )

    def with_pending_avatars(self) -> list[dict]:
        """Users whose avatar URL still waits to be fetched (`_pendingAvatarUrl`)."""
        with self._store.lock:
            return [detached(u) for u in self._users.all() if u.get("_pendingAvatarUrl")]

    # --- tokens ------------------------------------------------------------
    # `createdAt` and `expiresAt` are ISO 8601 UTC strings of one width
    # (ferry.kernel.ids.to_iso), so comparing them as strings compares the times.

    def add_token(self, token_hash: str, user_id: str, created_at: str, expires_at: str) -> None:
        """Store a new token, and drop every token that has expired by `created_at`."""
        with self._store.lock:
            expired = [
                t.doc_id for t in self._tokens.all() if t.get("expiresAt", created_at) < created_at
            ]
            if expired:
                self._tokens.remove(doc_ids=expired)
            self._tokens.insert(
                Document(
                    {"userId": user_id, "createdAt": created_at, "expiresAt": expires_at},
                    doc_id=token_hash,
                )
            )

    def token(self, token_hash: str) -> dict | None:
        """{"userId", "createdAt", "expiresAt"} of a stored token, None if unknown."""
        with self._store.lock:
            return detached(self._tokens.get(doc_id=token_hash))

    def all_tokens(self) -> dict[str, dict]:
        """Every stored token by its hash (moving an installation to another backend)."""
        with self._store.lock:
            return {t.doc_id: detached(dict(t)) for t in self._tokens.all()}

    def revoke_token(self, token_hash: str) -> bool:
        with self._store.lock:
            if self._tokens.get(doc_id=token_hash) is None:
                return False
            self._tokens.remove(doc_ids=[token_hash])
            return True

    def revoke_tokens_of(self, user_id: str, *, keep: str | None = None) -> int:
        """Remove every token of `user_id` but the one hashed `keep`; returns how many."""
        with self._store.lock:
            doomed = [
                t.doc_id for t in self._tokens.all() if t["userId"] == user_id and t.doc_id != keep
            ]
            if doomed:
                self._tokens.remove(doc_ids=doomed)
            return len(doomed)

    def set_missing_token_expiry(self, expires_at: str) -> int:
        """Give tokens stored without an expiry (older data) `expires_at`; returns how many."""
        with self._store.lock:
            undated = [t.doc_id for t in self._tokens.all() if "expiresAt" not in t]
            if undated:
                self._tokens.update({"expiresAt": expires_at}, doc_ids=undated)
            return len(undated)
