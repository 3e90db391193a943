"""Schemathesis fuzzes every operation of openapi.yaml against the in-process app."""

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from handlers.app import create_app
from tests.conftest import make_config

_data = Path(tempfile.mkdtemp(prefix="ferry-contract-"))
# Downloads are on, but only for a domain the stub resolver maps to loopback, which the
# address policy refuses: fuzzed URLs never make a DNS query or leave the machine.
app = create_app(
    make_config(
        _data,
        allow_download=True,
        download_allowed_domains=("files.example.test",),
        fetch_policy_overrides={"resolver": lambda host, port: ["127.0.0.1"]},
    )
)
_admin, _ = app.services.accounts.ensure_admin("admin", "contract-admin-password")
TOKEN = app.services.accounts.issue_token(_admin["_id"])
AUTH = {"X-User-Id": _admin["_id"], "X-Auth-Token": TOKEN}
(app.services.config.files_dir / "music" / "2024").mkdir(parents=True)
(app.services.config.files_dir / "music" / "2024" / "song.txt").write_text("la la la")


async def _without_lifespan(scope, receive, send):
    # Schemathesis ends every lifespan it started when each test ends, and the app's
    # shutdown closes its services, which every later operation's test needs open.
    # Refusing the lifespan scope is how an app says it has none.
    if scope["type"] == "lifespan":
        raise RuntimeError("the services live as long as this module")
    await app(scope, receive, send)


schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", _without_lifespan)


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
