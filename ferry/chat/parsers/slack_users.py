"""Slack's "export member list" CSV, the users of a workspace without their messages.

Columns are read by position, as Rocket.Chat does, because Slack has renamed headers
over time: 0 username, 1 email, 2 status, 7 fullname, 8 displayname. The first row is
the header. A user's import id is the e-mail, so rows without one are skipped.
"""

from __future__ import annotations

from pathlib import Path

from ferry.chat.parsers.archive import CappedWarnings
from ferry.chat.parsers.base import ImportFileError, PrepareOptions, RecordSink
from ferry.chat.parsers.csv_importer import read_csv_rows

_ZIP_MAGIC = b"PK\x03\x04"
_ROLES_BY_STATUS = {"admin": ["admin"], "bot": ["bot"]}


def _column(fields: list[str], index: int) -> str:
    return fields[index] if index < len(fields) else ""


class SlackUsersImporter:
    key = "slack-users"
    name = "Slack_Users"

    def prepare(self, source: Path, sink: RecordSink, options: PrepareOptions) -> None:
        try:
            stream = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise ImportFileError(f"The import file cannot be opened: {exc.strerror}.") from exc
        with stream:
            if stream.read(4) == _ZIP_MAGIC:
                raise ImportFileError(
                    "This is a zip archive; the Slack users importer expects the member list CSV "
                    "(use the Slack importer for a workspace export)."
                )
            stream.seek(0)
            size = Path(source).stat().st_size
            warn = CappedWarnings(sink.warn, Path(source).name)
            found = 0
            rows = read_csv_rows(stream, Path(source).name, warn)
            next(rows, None)  # the header
            for line, fields in rows:
                if options.on_progress and size:
                    options.on_progress(min(100.0, 100.0 * stream.tell() / size))
                if len(fields) < 3:
                    warn.row(line, "expected at least username, email and status")
                    continue
                username, email, status = fields[0], fields[1], fields[2].lower()
                if not email:
                    warn.row(line, f"user {username!r} has no e-mail (their import id)")
                    continue
                bot = status == "bot"
                found += 1
                sink.add_user(
                    {
                        "importIds": [email],
                        "username": username or None,
                        "name": _column(fields, 7) or _column(fields, 8) or username or None,
                        "emails": [email],
                        "type": "bot" if bot else "user",
                        "deleted": status == "deactivated",
                        "roles": list(_ROLES_BY_STATUS.get(status, [])),
                        "utcOffset": None,
                        "avatarUrl": None,
                        "statusText": None,
                        "bio": None,
                    }
                )
            warn.close()
        if found == 0:
            raise ImportFileError("No users found in the Slack member list.")
