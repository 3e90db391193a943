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
# Started as a server starts them (the worker pools that downloads and imports need).
app.services.start()
_admin, _ = app.services.accounts.ensure_admin("admin", "contract-admin-password")
TOKEN = app.services.accounts.issue_token(_admin["_id"])
AUTH = {"X-User-Id": _admin["_id"], "X-Auth-Token": TOKEN}
# Logout revokes the token it is sent with, and users.logoutOtherClients every token of
# its caller: their cases get a fresh session of their own, so AUTH lives on.
_sessions_user = app.services.accounts.create_user(
    "sessions", email=None, name="Sessions", password="contract-sessions-password"
)
SESSION_ENDING = {"/api/v1/logout": _admin, "/api/v1/users.logoutOtherClients": _sessions_user}

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


def _headers_for(case) -> dict[str, str]:
    owner = SESSION_ENDING.get(case.operation.path)
    if owner is None:
        return AUTH
    return {
        "X-User-Id": owner["_id"],
        "X-Auth-Token": app.services.accounts.issue_token(owner["_id"]),
    }


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_honours_the_contract(case):
    case.call_and_validate(headers=_headers_for(case))
