"""The sink a parser writes to while an operation is being prepared."""

from __future__ import annotations

from collections.abc import Callable

from ferry.chat.convert.state import ImportCancelled
from ferry.kernel.statuses import ImportStep
from storage.staging import StagingWriter

_STEP_ORDER = {
    step: rank
    for rank, step in enumerate(
        (
            ImportStep.PREPARING_STARTED,
            ImportStep.PREPARING_USERS,
            ImportStep.PREPARING_CHANNELS,
            ImportStep.PREPARING_MESSAGES,
            ImportStep.PREPARING_CONTACTS,
        )
    )
}


class StepSink:
    """Passes records to staging and moves the operation through the preparing steps.

    Every CHECK_EVERY records it asks whether to go on, so that import.clear and a
    shutdown stop a long parse instead of waiting for it.
    """

    CHECK_EVERY = 5000

    def __init__(
        self,
        writer: StagingWriter,
        on_step: Callable[[str], None],
        should_continue: Callable[[], bool],
    ):
        self._writer = writer
        self._on_step = on_step
        self._should_continue = should_continue
        self._step = ImportStep.PREPARING_STARTED
        self._seen = 0

    def _enter(self, step: ImportStep) -> None:
        self._seen += 1
        if self._seen % self.CHECK_EVERY == 0 and not self._should_continue():
            raise ImportCancelled("the operation was cleared while it was being prepared")
        # Steps only move forward: a parser that finds a channel among its messages (a
        # CSV DM pair, for one) must not flip the status back and forth, each flip being
        # a synced write of the operations file and a step going backwards for clients.
        if _STEP_ORDER[step] > _STEP_ORDER[self._step]:
            self._step = step
            self._on_step(step)

    def add_user(self, user: dict) -> None:
        self._enter(ImportStep.PREPARING_USERS)
        self._writer.add_user(user)

    def add_channel(self, channel: dict) -> None:
        self._enter(ImportStep.PREPARING_CHANNELS)
        self._writer.add_channel(channel)

    def add_message(self, message: dict) -> None:
        self._enter(ImportStep.PREPARING_MESSAGES)
        self._writer.add_message(message)

    def add_contact(self, contact: dict) -> None:
        self._enter(ImportStep.PREPARING_CONTACTS)
        self._writer.add_contact(contact)

    def warn(self, message: str) -> None:
        self._writer.warn(message)
