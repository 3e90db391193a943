"""Each lifecycle enum equals the named enum schema the spec gives it, in order."""

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
    ThreadFilter,
    UserType,
)

SPEC = yaml.safe_load((Path(__file__).resolve().parents[3] / "openapi.yaml").read_text())
SCHEMAS = SPEC["components"]["schemas"]


@pytest.mark.parametrize(
    ("enum", "spec_values"),
    [
        (DownloadStatus, SCHEMAS["DownloadStatus"]["enum"]),
        (DownloadKind, SCHEMAS["DownloadKind"]["enum"]),
        (ImportStep, SCHEMAS["ImportStep"]["enum"]),
        (ImportState, SCHEMAS["ImportState"]["enum"]),
        (RoomType, SCHEMAS["RoomType"]["enum"]),
        (Role, SCHEMAS["Role"]["enum"]),
        (UserType, SCHEMAS["UserType"]["enum"]),
        (EntryType, SCHEMAS["EntryType"]["enum"]),
        (HealthStatus, SCHEMAS["HealthStatus"]["enum"]),
        (EventType, SCHEMAS["EventType"]["enum"]),
        (ThreadFilter, SCHEMAS["ThreadFilter"]["enum"]),
    ],
)
def test_enum_equals_the_spec(enum, spec_values):
    assert [member.value for member in enum] == spec_values


def test_members_are_their_strings_in_json_and_comparisons():
    assert json.dumps({"status": DownloadStatus.COMPLETED}) == '{"status": "completed"}'
    assert ImportStep.DONE == "importer_done" and f"{RoomType.DIRECT}" == "d"


@pytest.mark.parametrize(
    ("field", "schema_name"),
    [
        (SCHEMAS["Download"]["properties"]["status"], "DownloadStatus"),
        (SCHEMAS["Download"]["properties"]["kind"], "DownloadKind"),
        (SCHEMAS["Room"]["properties"]["t"], "RoomType"),
        (SCHEMAS["UserCreateRequest"]["properties"]["roles"]["items"], "Role"),
        (SCHEMAS["RoleChangeRequest"]["properties"]["roleName"], "Role"),
        (SCHEMAS["User"]["properties"]["type"], "UserType"),
        (SCHEMAS["DirectoryEntry"]["properties"]["type"], "EntryType"),
        (SCHEMAS["Health"]["properties"]["status"], "HealthStatus"),
    ],
)
def test_fields_use_the_named_enum(field, schema_name):
    assert field == {"$ref": f"#/components/schemas/{schema_name}"}
