"""A recording sink and zip builders for the importer tests."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from ferry.chat.parsers.base import ImportFileError, PrepareOptions

# Real exports from other tools sit beside the project, never copied into it.
FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"


class RecordingSink:
    def __init__(self) -> None:
        self.users: list[dict] = []
        self.channels: list[dict] = []
        self.messages: list[dict] = []
        self.contacts: list[dict] = []
        self.warnings: list[str] = []

    def add_user(self, user: dict) -> None:
        self.users.append(user)

    def add_channel(self, channel: dict) -> None:
        self.channels.append(channel)

    def add_message(self, message: dict) -> None:
        self.messages.append(message)

    def add_contact(self, contact: dict) -> None:
        self.contacts.append(contact)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    @property
    def written(self) -> int:
        return len(self.users) + len(self.channels) + len(self.messages)

    def user(self, import_id: str) -> dict:
        return next(u for u in self.users if import_id in u["importIds"])

    def channel(self, import_id: str) -> dict:
        return next(c for c in self.channels if import_id in c["importIds"])

    def message(self, message_id: str) -> dict:
        return next(m for m in self.messages if m["_id"] == message_id)

    def warned(self, *words: str) -> bool:
        return any(all(w.lower() in text.lower() for w in words) for text in self.warnings)


def build_zip(path: Path, entries: dict[str, Any]) -> Path:
    """Write a zip; bytes and str are stored as given, anything else as JSON."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            if isinstance(content, str):
                content = content.encode()
            elif not isinstance(content, bytes):
                content = json.dumps(content).encode()
            archive.writestr(name, content)
    return path


def prepare(importer, source: Path, **options) -> RecordingSink:
    sink = RecordingSink()
    importer.prepare(source, sink, PrepareOptions(**options))
    return sink


def prepare_fails(importer, source: Path, **options) -> tuple[str, RecordingSink]:
    sink = RecordingSink()
    with pytest.raises(ImportFileError) as caught:
        importer.prepare(source, sink, PrepareOptions(**options))
    return caught.value.message, sink
