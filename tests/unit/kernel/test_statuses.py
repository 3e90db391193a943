"""Each lifecycle enum equals the enum the spec gives for the same field, in order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ferry.kernel.statuses import (
    DownloadKind,
    DownloadStatus,
    EntryType,
    EventType,
    HealthStatus,
    ImportState,
    ImportStep,
    Role,
    RoomType,
    UserType,
)

SPEC = yaml.safe_load((Path(__file__).resolve().parents[3] / "openapi.yaml").read_text())
SCHEMAS = SPEC["components"]["schemas"]


def _import_status_state() -> list:
    answer = SPEC["paths"]["/api/v1/import.status"]["get"]["responses"]["200"]
    return answer["content"]["application/json"]["schema"]["properties"]["state"]["enum"]


@pytest.mark.parametrize(
    ("enum", "spec_values"),
    [
        (DownloadStatus, SCHEMAS["Download"]["properties"]["status"]["enum"]),
        (DownloadKind, SCHEMAS["Download"]["properties"]["kind"]["enum"]),
        (ImportStep, SCHEMAS["ImportStep"]["enum"]),
        (ImportState, _import_status_state()),
        (RoomType, SCHEMAS["Room"]["properties"]["t"]["enum"]),
        (Role, SCHEMAS["UserCreateRequest"]["properties"]["roles"]["items"]["enum"]),
        (Role, SCHEMAS["RoleChangeRequest"]["properties"]["roleName"]["enum"]),
        (UserType, SCHEMAS["User"]["properties"]["type"]["enum"]),
        (EntryType, SCHEMAS["DirectoryEntry"]["properties"]["type"]["enum"]),
        (HealthStatus, SCHEMAS["Health"]["properties"]["status"]["enum"]),
        (EventType, SCHEMAS["LiveEvent"]["properties"]["event"]["enum"]),
    ],
)
def test_enum_equals_the_spec(enum, spec_values):
    assert [member.value for member in enum] == spec_values


def test_members_are_their_strings_in_json_and_comparisons():
    assert json.dumps({"status": DownloadStatus.COMPLETED}) == '{"status": "completed"}'
    assert ImportStep.DONE == "importer_done" and f"{RoomType.DIRECT}" == "d"
