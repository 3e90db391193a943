"""Turn one operation's staging records into Ferry users, rooms and messages.

This is Rocket.Chat's converter pass (Importer.startImport with the User, Room and
Message converters), with these fixes: the selection also filters messages (a message
of a room left out is skipped and counted, not failed), retries never duplicate
anything, Slack's microsecond order survives, and a failed record is recorded and
counted instead of stopping the run.

API
---
    report = run_import(
        operation_id, staging=StagingArea, users=UserRepository, workspace=WorkspaceStore,
        selection=Selection.from_input(body["input"]),   # or Selection.everything()
        importing_user_id=uid,                           # creator fallback for rooms
        progress=lambda step, completed, total, errors: ...,
        should_continue=lambda: operation_still_valid,
    ) -> ImportReport

* `progress` receives Rocket.Chat's step strings (`importer_importing_users`,
  `importer_importing_channels`, `importer_importing_messages`, `importer_finishing`)
  at every step change and at most every `progress_interval` seconds in between.
  `completed` counts every staging record looked at (imported, skipped or failed);
  `total` is all staging records of the operation.
* `should_continue` is asked between batches of `batch_size` records. When it answers
  False the work done so far is written out (it is consistent, and a later run
  completes it) and `ImportCancelled` is raised.
* Per-record failures carry Rocket.Chat's error strings (`importer-user-missing-email-
  and-username`, `importer-channel-missing-name`, `importer-message-unknown-room`, ...),
  are written to the staging marks (`StagingArea.errors`) and counted in
  `ImportReport.errors`; the first ERROR_SAMPLES are kept in the report.
* Idempotent: users are matched by email, then username, then import id; rooms by
  import id, then DM member set, then name; messages are upserted by their stable
  `_id`. Running the same staging twice creates nothing new.
* Existing accounts are never changed: a matched user only gains import ids (see
  ferry/chat/convert/users.py), and `ImportReport.warning_samples` say what an export
  asked of an account and did not get.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ferry.chat.convert.contacts import import_contacts
from ferry.chat.convert.messages import import_messages
from ferry.chat.convert.rooms import import_channels
from ferry.chat.convert.state import BATCH, ImportReport, Run, Selection
from ferry.chat.convert.users import import_users
from ferry.kernel.statuses import ImportStep
from storage.contacts import ContactRepository
from storage.staging import StagingArea
from storage.users import UserRepository
from storage.workspace import WorkspaceStore


def run_import(
    operation_id: str,
    *,
    staging: StagingArea,
    users: UserRepository,
    workspace: WorkspaceStore,
    contacts: ContactRepository | None = None,
    selection: Selection,
    importing_user_id: str | None,
    progress: Callable[[str, int, int, int], None] | None = None,
    should_continue: Callable[[], bool] | None = None,
    progress_interval: float = 0.25,
    clock: Callable[[], float] = time.monotonic,
    batch_size: int = BATCH,
) -> ImportReport:
    """Convert the finished staging of `operation_id`; see the module docstring.

    Raises:
        storage.staging.StagingIncomplete: the operation has no finished prepare.
        ferry.chat.convert.state.ImportCancelled: `should_continue()` returned False
            between two batches.
    """
    run = Run(
        operation_id,
        staging=staging,
        users=users,
        workspace=workspace,
        contacts=contacts,
        selection=selection,
        importing_user_id=importing_user_id,
        progress=progress,
        should_continue=should_continue,
        progress_interval=progress_interval,
        clock=clock,
        batch_size=batch_size,
    )
    try:
        import_users(run)
        import_channels(run)
        import_messages(run)
        import_contacts(run)
        run.enter(ImportStep.FINISHING)
    finally:
        if run.marks:
            staging.mark_errors(operation_id, run.marks)
            run.marks = []
    return run.report
