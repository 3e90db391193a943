"""Every lifecycle's vocabulary, one StrEnum each, equal to the enums of openapi.yaml.

The members compare and serialise as their strings, so records, JSON answers and
stored documents hold plain strings while code names the states it means.
"""

from __future__ import annotations

from enum import StrEnum


class DownloadStatus(StrEnum):
    STARTING = "starting"
    DOWNLOADING = "downloading"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Not finished: queued, running, or paused with what it has so far kept.
ACTIVE_DOWNLOAD_STATUSES = frozenset(
    {DownloadStatus.STARTING, DownloadStatus.DOWNLOADING, DownloadStatus.PAUSED}
)
FINAL_DOWNLOAD_STATUSES = frozenset(
    {DownloadStatus.COMPLETED, DownloadStatus.FAILED, DownloadStatus.CANCELLED}
)


class EventType(StrEnum):
    """What a live event (`GET /api/v1/events`, webhooks) tells."""

    DOWNLOAD_STARTED = "download.started"
    DOWNLOAD_PROGRESS = "download.progress"
    DOWNLOAD_PAUSED = "download.paused"
    DOWNLOAD_RESUMED = "download.resumed"
    DOWNLOAD_COMPLETED = "download.completed"
    DOWNLOAD_FAILED = "download.failed"
    DOWNLOAD_CANCELLED = "download.cancelled"
    IMPORT_STEP = "import.step"
    IMPORT_PROGRESS = "import.progress"


class DownloadKind(StrEnum):
    """What started a download."""

    FILE = "file"
    IMPORT = "import"
    PENDING_FILE = "pending-file"
    PENDING_AVATAR = "pending-avatar"


class ImportStep(StrEnum):
    """Rocket.Chat's import step strings, in the order an operation goes through them."""

    NEW = "importer_new"
    UPLOADING = "importer_uploading"
    DOWNLOADING_FILE = "importer_downloading_file"
    FILE_LOADED = "importer_file_loaded"
    PREPARING_STARTED = "importer_preparing_started"
    PREPARING_USERS = "importer_preparing_users"
    PREPARING_CHANNELS = "importer_preparing_channels"
    PREPARING_MESSAGES = "importer_preparing_messages"
    PREPARING_CONTACTS = "importer_preparing_contacts"
    USER_SELECTION = "importer_user_selection"
    IMPORTING_STARTED = "importer_importing_started"
    IMPORTING_USERS = "importer_importing_users"
    IMPORTING_CHANNELS = "importer_importing_channels"
    IMPORTING_MESSAGES = "importer_importing_messages"
    IMPORTING_CONTACTS = "importer_importing_contacts"
    IMPORTING_FILES = "importer_importing_files"
    FINISHING = "importer_finishing"
    DONE = "importer_done"
    FAILED = "importer_import_failed"
    CANCELLED = "importer_import_cancelled"


FINAL_IMPORT_STEPS = frozenset({ImportStep.DONE, ImportStep.FAILED, ImportStep.CANCELLED})


class ImportState(StrEnum):
    """An operation's state in the `import.*` API's terms."""

    NONE = "none"
    NEW = "new"
    LOADING = "loading"
    READY = "ready"
    IMPORTING = "importing"
    DONE = "done"
    ERROR = "error"
    CANCELED = "canceled"


class RoomType(StrEnum):
    CHANNEL = "c"
    PRIVATE_GROUP = "p"
    DIRECT = "d"


class Role(StrEnum):
    ADMIN = "admin"
    EDITOR = "editor"
    USER = "user"
    BOT = "bot"
    # Rocket.Chat's other default roles: an import may carry them; in Ferry they grant
    # nothing beyond what the user's other roles grant.
    GUEST = "guest"
    MODERATOR = "moderator"
    OWNER = "owner"
    LEADER = "leader"
    APP = "app"
    LIVECHAT_AGENT = "livechat-agent"
    LIVECHAT_MANAGER = "livechat-manager"


class ThreadFilter(StrEnum):
    """Which threads chat.getThreadsList lists."""

    ALL = "all"
    FOLLOWING = "following"
    UNREAD = "unread"


class UserType(StrEnum):
    USER = "user"
    BOT = "bot"


class EntryType(StrEnum):
    """A file-tree entry."""

    FILE = "file"
    DIRECTORY = "directory"


class HealthStatus(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
