"""The composition root: builds the services one app instance uses, over one data directory.

`Services.open` builds objects and touches nothing else; `Services.start`, which only the
server takes (through the app's lifespan), starts the worker pools and recovers what a
previous run left unfinished. Operability (telemetry, memory tuning) is wired in here, so
the domain never imports it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from ferry import __version__
from ferry.accounts import Accounts, PasswordHasher
from ferry.chat.attachments import LEGACY_FOLDER, Attachments
from ferry.chat.avatars import Avatars
from ferry.chat.contacts import ContactQueries
from ferry.chat.message_reads import MessageReads
from ferry.chat.operations.records import event_view
from ferry.chat.operations.service import ImportService
from ferry.chat.reads import WorkspaceQueries
from ferry.chat.role_members import RoleMembers
from ferry.chat.room_members import RoomDirectory
from ferry.chat.subscriptions import Subscriptions
from ferry.chat.user_reads import UserReads
from ferry.downloads.bandwidth import TokenBucket
from ferry.downloads.fetch_types import TransferTuning
from ferry.downloads.manager import DownloadManager
from ferry.downloads.movers import BodyMovers, processes_for
from ferry.downloads.policy import FetchPolicy
from ferry.downloads.transfers import Transfers
from ferry.events import DOWNLOAD, Event, EventBus, EventFanOut, ImportEvents
from ferry.files import FileTree
from ferry.files.edits import FileEdits
from ferry.files.part_sweep import PartSweeper
from ferry.files.reading import FileHashes
from ferry.kernel.config import Config
from ferry.kernel.statuses import DownloadStatus, HealthStatus
from ferry.login_throttle import LoginThrottle
from ferry.ops import allocator
from ferry.ops.telemetry import Telemetry
from ferry.webhooks import Webhooks
from storage.backends import Repositories, open_backend

# Pending files live under the state directory and are served by /file-upload/ to those
# who may read their rooms; avatars, public in Rocket.Chat, stay in the served tree.
UPLOADS_FOLDER = "uploads"
AVATARS_FOLDER = "avatars"

# Health reports degraded below this much free space where state or files are written:
# a state file is rewritten beside itself, and a download needs room as it arrives.
LOW_DISK_BYTES = 16 * 1024**2

# How long shutdown waits for a webhook being sent; what is still queued is dropped.
WEBHOOK_STOP_SECONDS = 2

# Who hears import operations' live events.
IMPORT_PERMISSION = "run-import"

# How long shutdown waits for transfers to record their end before the store closes.
SHUTDOWN_GRACE_SECONDS = 10


@dataclass
class Services:
    config: Config
    store: Repositories
    accounts: Accounts
    files: FileTree
    file_edits: FileEdits
    downloads: DownloadManager
    transfers: Transfers
    contacts: ContactQueries
    imports: ImportService
    workspace: WorkspaceQueries
    messages: MessageReads
    rooms: RoomDirectory
    subscriptions: Subscriptions
    user_reads: UserReads
    role_members: RoleMembers
    avatars: Avatars
    attachments: Attachments
    telemetry: Telemetry
    events: EventBus
    webhooks: Webhooks
    part_sweeper: PartSweeper
    memory_release: allocator.PeriodicRelease
    # Events of every process on a shared database; None on TinyDB.
    event_fan_out: EventFanOut | None
    # Helper processes that move download bodies (started at the first that needs one).
    movers: BodyMovers
    started: bool = False
    file_hashes: FileHashes = field(default_factory=FileHashes)

    @classmethod
    def open(cls, config: Config) -> Services:
        """Raises storage.store.DataDirLocked when another process owns the data directory
        (TinyDB), storage.backends.DatabaseUnavailable when `database_url` leads nowhere
        (PostgreSQL), and FetchError for a webhook URL the download policy refuses."""
        telemetry = Telemetry()
        events = EventBus()
        webhooks = Webhooks(
            config.webhook_urls,
            config.webhook_secret,
            fetch_policy(config),
            on_outcome=telemetry.webhook_outcome,
        )
        events.add_listener(webhooks.event)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        store = open_backend(config.database_url, config.state_dir)
        fan_out = None if store.event_channel is None else EventFanOut(events, store.event_channel)
        accounts = Accounts(
            store.users,
            PasswordHasher(cost=config.password_cost),
            token_ttl=config.token_ttl,
            throttle=LoginThrottle(shared=store.throttle_records),
        )
        files = FileTree(config.files_dir)
        movers = BodyMovers(processes_for(os.cpu_count() or 1), config.max_concurrent_downloads)
        downloads = DownloadManager(
            store.downloads,
            fetch_policy(config),
            max_concurrent=config.max_concurrent_downloads,
            max_queued=config.max_queued_downloads,
            history_limit=config.download_history_limit,
            listener=telemetry,
            # The last transfer of a burst has ended: hand the memory its workers freed
            # back to the system, so that the resting size is what is really in use.
            on_idle=allocator.release_free_memory,
            on_event=lambda kind, record: events.publish(kind, DOWNLOAD, record),
            max_per_host=config.max_connections_per_host,
            works_jobs=config.workers > 0,
            tuning=TransferTuning(
                bandwidth=bandwidth(config.max_download_rate),
                retries=config.download_retries,
                movers=movers,
            ),
        )
        telemetry.watch_downloads(downloads.stats)
        transfers = Transfers(downloads, files, accounts, allowed=config.allow_download)
        workspace = store.workspace
        queries = WorkspaceQueries(workspace)
        subscriptions = Subscriptions(queries, accounts.users)
        attachments = Attachments(
            queries,
            workspace,
            directory=config.state_dir / UPLOADS_FOLDER,
            legacy_directory=config.files_dir / LEGACY_FOLDER,
        )
        contacts = store.contacts
        imports = ImportService(
            store.operations,
            store.staging,
            accounts.users,
            workspace,
            downloads,
            store_dir=config.state_dir / "import-files",
            attachments=attachments,
            avatars_dir=config.files_dir / AVATARS_FOLDER,
            import_folder=config.import_folder,
            max_upload_size=config.max_upload_size,
            hash_password=accounts.hasher.hash,
            contacts=contacts,
            direct_message_max_users=config.direct_message_max_users,
            on_status=_both(
                telemetry.import_status, ImportEvents(events, event_view).operation_stored
            ),
            # A prepare or import allocates tens of MB of short-lived records; give the
            # pages back now rather than keep them as free space in the allocator.
            on_work_done=allocator.release_free_memory,
            works_jobs=config.workers > 0,
        )
        return cls(
            config=config,
            store=store,
            accounts=accounts,
            files=files,
            file_edits=FileEdits(
                files, lambda: [record["directory"] for record in downloads.active()]
            ),
            downloads=downloads,
            transfers=transfers,
            contacts=ContactQueries(contacts, accounts.users),
            imports=imports,
            workspace=queries,
            messages=MessageReads(queries, workspace),
            rooms=RoomDirectory(queries, accounts.users),
            subscriptions=subscriptions,
            user_reads=UserReads(accounts, subscriptions),
            role_members=RoleMembers(accounts.users),
            avatars=Avatars(accounts.users, config.files_dir / AVATARS_FOLDER),
            attachments=attachments,
            telemetry=telemetry,
            events=events,
            webhooks=webhooks,
            part_sweeper=PartSweeper(config.files_dir, config.upload_part_ttl),
            memory_release=allocator.PeriodicRelease(),
            event_fan_out=fan_out,
            movers=movers,
        )

    def start(self) -> None:
        """Start the worker pools and recover; the server's step, taken once."""
        if self.started:
            return
        self.started = True
        self.accounts.startup()
        self.webhooks.start()
        self.movers.enable()
        # Transfers a crash cut off go on from their part files where the server allows it
        # (and downloads are on); the rest are recorded as failed, their part files removed.
        self.downloads.startup(resume=self.config.allow_download)
        # Imported files an earlier version left in the served tree move out of it.
        self.attachments.move_legacy_uploads()
        self.imports.startup(recover=self.store.claim_import_recovery())
        # Part files of uploads nobody finished, now and every hour.
        self.part_sweeper.start()
        self.memory_release.start()
        if self.event_fan_out is not None:
            self.event_fan_out.start()

    def start_worker(self) -> None:
        """Work jobs only (`ferry worker`): downloads and import work, no accounts, no
        HTTP. A download a dead worker left goes on from its part file where its server
        allows; an import from where it stopped."""
        if self.started:
            return
        self.started = True
        self.webhooks.start()
        self.movers.enable()
        self.downloads.startup(resume=True)
        self.imports.startup(recover=False)
        self.memory_release.start()

    def event_view(self, user: dict) -> Callable[[Event], dict | None]:
        """What `user` is told of each event (its `data`), or None for an event about a
        download they may not see, or an import without the import permission."""
        downloads = self.transfers.viewer(user)
        imports = IMPORT_PERMISSION in self.accounts.permissions_of(user)

        def view(event: Event) -> dict | None:
            if event.subject == DOWNLOAD:
                record = downloads(event.record)
                return None if record is None else {"type": event.type, "download": record}
            return {"type": event.type, "operation": event.record} if imports else None

        return view

    def health(self) -> dict:
        """Cheap enough to poll every second: no storage reads or writes, only an
        access() and a statvfs() of `state/` and `files/` each (and, on PostgreSQL, one
        `SELECT 1`)."""
        directories = (self.config.state_dir, self.config.files_dir)
        checks = {
            "data_dir_writable": all(os.access(d, os.W_OK) for d in directories),
            "disk_space_available": all(has_free_space(d) for d in directories),
        }
        if self.store.kind == "postgresql":
            checks["database_reachable"] = self.store.reachable()
        stats = self.downloads.stats()
        return {
            "status": HealthStatus.OK if all(checks.values()) else HealthStatus.DEGRADED,
            "version": __version__,
            "uptime_seconds": round(self.telemetry.uptime(), 3),
            "checks": checks,
            "active_downloads": stats[DownloadStatus.STARTING] + stats[DownloadStatus.DOWNLOADING],
        }

    def close(self) -> None:
        self.part_sweeper.stop()
        self.memory_release.stop()
        if self.event_fan_out is not None:
            self.event_fan_out.stop()
        self.events.close()
        self.imports.shutdown()
        self.downloads.shutdown(SHUTDOWN_GRACE_SECONDS)
        self.movers.stop()
        self.webhooks.stop(WEBHOOK_STOP_SECONDS)
        self.store.close()


def bandwidth(rate: int) -> TokenBucket | None:
    """The bucket every download draws from; None for no limit (0)."""
    return TokenBucket(rate) if rate else None


def _both(first, second):
    def tell(operation: dict) -> None:
        first(operation)
        second(operation)

    return tell


def has_free_space(directory) -> bool:
    """Whether `directory`'s file system has room for the next state write: at least
    LOW_DISK_BYTES free to unprivileged writers and a free inode (where it counts them)."""
    try:
        usage = os.statvfs(directory)
    except OSError:
        return False
    enough_bytes = usage.f_bavail * usage.f_frsize >= LOW_DISK_BYTES
    return enough_bytes and (usage.f_files == 0 or usage.f_favail > 0)


def fetch_policy(config: Config) -> FetchPolicy:
    """The one policy every server-side fetch obeys, downloads and imports alike."""
    return FetchPolicy(
        allowed_domains=config.download_allowed_domains,
        blocked_domains=config.download_blocked_domains,
        allow_private_networks=config.allow_private_networks,
        max_size=config.max_download_size or None,
        timeout=config.download_timeout,
        max_duration=config.download_max_duration,
        **config.fetch_policy_overrides,
    )
