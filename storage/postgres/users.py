"""Users and their auth tokens on PostgreSQL; the same methods as storage.users."""

from __future__ import annotations

from collections.abc import Iterable

from storage.postgres.connection import Database, document


def _username_key(username: str) -> str:
    return username.casefold()


def _email_key(address: str) -> str:
    return address.strip().casefold()


def _columns(user: dict) -> tuple:
    """The searchable columns of `user`, in the order of _COLUMNS."""
    username = user.get("username")
    return (
        _username_key(username) if username else None,
        [_email_key(e["address"]) for e in user.get("emails") or []],
        list(user.get("importIds") or []),
        user.get("createdAt") or "",
        "admin" in (user.get("roles") or []) and bool(user.get("active", True)),
        bool(user.get("_pendingAvatarUrl")),
    )


_COLUMNS = "username_key, email_keys, import_ids, created_at, active_admin, pending_avatar"


class UserRepository:
    """Table `users` (the document and its lookup columns) and table `tokens`."""

    def __init__(self, database: Database):
        self._db = database

    # --- users -------------------------------------------------------------

    def insert_many(self, users: Iterable[dict]) -> None:
        """Insert new users in one transaction; each must carry a unique `_id`."""
        rows = [(u["_id"], document(u), *_columns(u)) for u in users]
        if not rows:
            return
        with self._db.transaction() as connection, connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO users (id, doc, {_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )

    def insert(self, user: dict) -> None:
        self.insert_many([user])

    def get(self, user_id: str) -> dict | None:
        return self._one("SELECT doc FROM users WHERE id = %s", (user_id,))

    def by_username(self, username: str) -> dict | None:
        return self._one(
            "SELECT doc FROM users WHERE username_key = %s ORDER BY inserted LIMIT 1",
            (_username_key(username),),
        )

    def by_email(self, address: str) -> dict | None:
        return self._one(
            "SELECT doc FROM users WHERE email_keys @> ARRAY[%s] ORDER BY inserted LIMIT 1",
            (_email_key(address),),
        )

    def id_for_import_id(self, import_id: str) -> str | None:
        with self._db.connection() as connection:
            row = connection.execute(
                "SELECT id FROM users WHERE import_ids @> ARRAY[%s] ORDER BY inserted LIMIT 1",
                (import_id,),
            ).fetchone()
        return row[0] if row else None

    def _one(self, query: str, params: tuple) -> dict | None:
        with self._db.connection() as connection:
            row = connection.execute(query, params).fetchone()
        return row[0] if row else None

    def update(self, user_id: str, fields: dict) -> dict | None:
        """Replace the given top-level fields; returns the updated user, None if unknown."""
        return self.update_many({user_id: fields}).get(user_id)

    def update_many(self, changes: dict[str, dict]) -> dict[str, dict]:
        """Apply `{user_id: fields}` in one transaction; returns the users that exist, updated."""
        if not changes:
            return {}
        updated: dict[str, dict] = {}
        with self._db.transaction() as connection:
            rows = connection.execute(
                "SELECT id, doc FROM users WHERE id = ANY(%s) FOR UPDATE", (list(changes),)
            ).fetchall()
            for user_id, current in rows:
                current.update(changes[user_id])
                updated[user_id] = current
            if updated:
                with connection.cursor() as cursor:
                    cursor.executemany(
                        f"UPDATE users SET doc = %s, ({_COLUMNS}) = (%s, %s, %s, %s, %s, %s) "
                        "WHERE id = %s",
                        [(document(u), *_columns(u), uid) for uid, u in updated.items()],
                    )
        return updated

    def delete(self, user_id: str) -> bool:
        with self._db.transaction() as connection:
            gone = connection.execute("DELETE FROM users WHERE id = %s", (user_id,)).rowcount
            if gone:
                connection.execute("DELETE FROM tokens WHERE user_id = %s", (user_id,))
        return bool(gone)

    def page(self, offset: int, count: int | None) -> tuple[list[dict], int]:
        """Users ordered by creation time, then id (all from `offset` when `count` is
        None); returns (page, total)."""
        with self._db.connection() as connection:
            rows = connection.execute(
                'SELECT doc FROM users ORDER BY created_at COLLATE "C", id COLLATE "C" '
                "OFFSET %s LIMIT %s",
                (max(offset, 0), None if count is None else max(count, 0)),
            ).fetchall()
            total = connection.execute("SELECT count(*) FROM users").fetchone()[0]
        return [row[0] for row in rows], total

    def count(self) -> int:
        with self._db.connection() as connection:
            return connection.execute("SELECT count(*) FROM users").fetchone()[0]

    def count_active_admins(self) -> int:
        with self._db.connection() as connection:
            return connection.execute("SELECT count(*) FROM users WHERE active_admin").fetchone()[0]

    def with_pending_avatars(self) -> list[dict]:
        """Users whose avatar URL still waits to be fetched (`_pendingAvatarUrl`)."""
        with self._db.connection() as connection:
            rows = connection.execute(
                "SELECT doc FROM users WHERE pending_avatar ORDER BY inserted"
            ).fetchall()
        return [row[0] for row in rows]

    # --- tokens ------------------------------------------------------------
    # `createdAt` and `expiresAt` are ISO 8601 UTC strings of one width, so comparing
    # them as strings (in the C collation) compares the times.

    def add_token(self, token_hash: str, user_id: str, created_at: str, expires_at: str) -> None:
        """Store a new token, and drop every token that has expired by `created_at`."""
        with self._db.transaction() as connection:
            connection.execute(
                'DELETE FROM tokens WHERE expires_at COLLATE "C" < %s', (created_at,)
            )
            connection.execute(
                "INSERT INTO tokens (token_hash, user_id, created_at, expires_at) "
                "VALUES (%s, %s, %s, %s)",
                (token_hash, user_id, created_at, expires_at),
            )

    def token(self, token_hash: str) -> dict | None:
        """{"userId", "createdAt", "expiresAt"} of a stored token, None if unknown."""
        with self._db.connection() as connection:
            row = connection.execute(
                "SELECT user_id, created_at, expires_at FROM tokens WHERE token_hash = %s",
                (token_hash,),
            ).fetchone()
        if row is None:
            return None
        token = {"userId": row[0], "createdAt": row[1]}
        if row[2] is not None:
            token["expiresAt"] = row[2]
        return token

    def revoke_token(self, token_hash: str) -> bool:
        with self._db.connection() as connection:
            return bool(
                connection.execute(
                    "DELETE FROM tokens WHERE token_hash = %s", (token_hash,)
                ).rowcount
            )

    def revoke_tokens_of(self, user_id: str, *, keep: str | None = None) -> int:
        """Remove every token of `user_id` but the one hashed `keep`; returns how many."""
        with self._db.connection() as connection:
            return connection.execute(
                "DELETE FROM tokens WHERE user_id = %s AND token_hash IS DISTINCT FROM %s",
                (user_id, keep),
            ).rowcount

    def set_missing_token_expiry(self, expires_at: str) -> int:
        """Give tokens stored without an expiry (older data) `expires_at`; returns how many."""
        with self._db.connection() as connection:
            return connection.execute(
                "UPDATE tokens SET expires_at = %s WHERE expires_at IS NULL", (expires_at,)
            ).rowcount

    # --- moving an installation in ------------------------------------------

    def all_tokens(self) -> dict[str, dict]:
        """Every stored token by its hash."""
        with self._db.connection() as connection:
            rows = connection.execute("SELECT token_hash FROM tokens").fetchall()
        return {row[0]: self.token(row[0]) for row in rows}

    def insert_tokens(self, tokens: dict[str, dict]) -> None:
        """Store tokens exactly as another backend held them (a missing expiry included)."""
        rows = [
            (token_hash, t["userId"], t.get("createdAt", ""), t.get("expiresAt"))
            for token_hash, t in tokens.items()
        ]
        if not rows:
            return
        with self._db.transaction() as connection, connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO tokens (token_hash, user_id, created_at, expires_at) "
                "VALUES (%s, %s, %s, %s)",
                rows,
            )
