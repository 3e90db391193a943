"""Schemathesis fuzzes every operation of openapi.yaml against the in-process app."""

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from ferry.app import create_app
from tests.conftest import make_config

_data = Path(tempfile.mkdtemp(prefix="ferry-contract-"))
app = create_app(make_config(_data))
_admin, _ = app.services.accounts.ensure_admin("admin", "contract-admin-password")
TOKEN = app.services.accounts.issue_token(_admin["_id"])
AUTH = {"X-User-Id": _admin["_id"], "X-Auth-Token": TOKEN}
(app.services.config.files_dir / "music" / "2024").mkdir(parents=True)
(app.services.config.files_dir / "music" / "2024" / "song.txt").write_text("la la la")

schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_honours_the_contract(case):
    case.call_and_validate(headers=AUTH)
