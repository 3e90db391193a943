"""The breaking-change gate `make lint` runs fails on a planted breaking change."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GATE = ROOT / "tests" / "contract" / "breaking_changes.sh"
# A few operations keep the comparison quick; the gate reads the whole spec the same way.
KEPT_PATHS = ("/api/v1/health", "/api/v1/users.info", "/api/v1/users.create")

pytestmark = pytest.mark.skipif(shutil.which("npx") is None, reason="the gate needs Node (npx)")


@pytest.fixture
def released(tmp_path) -> dict:
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    spec["paths"] = {path: spec["paths"][path] for path in KEPT_PATHS}
    return spec


def _gate(
    tmp_path, released: dict, current: dict, accepted: str = ""
) -> subprocess.CompletedProcess:
    (tmp_path / "released.yaml").write_text(yaml.safe_dump(released, sort_keys=False))
    (tmp_path / "current.yaml").write_text(yaml.safe_dump(current, sort_keys=False))
    (tmp_path / "accepted.txt").write_text(accepted)
    command = [
        str(GATE),
        str(tmp_path / "released.yaml"),
        str(tmp_path / "current.yaml"),
        str(tmp_path / "accepted.txt"),
    ]
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, env=env
    )


def _copy(spec: dict) -> dict:
    return yaml.safe_load(yaml.safe_dump(spec))


def test_an_unchanged_spec_passes(tmp_path, released):
    answer = _gate(tmp_path, released, _copy(released))
    assert answer.returncode == 0, answer.stderr


def test_a_removed_operation_fails_the_gate_and_is_named(tmp_path, released):
    current = _copy(released)
    del current["paths"]["/api/v1/users.info"]
    answer = _gate(tmp_path, released, current)
    assert answer.returncode == 1
    assert "path.remove: paths./api/v1/users.info" in answer.stderr


def test_a_newly_required_request_field_fails_the_gate(tmp_path, released):
    current = _copy(released)
    current["components"]["schemas"]["UserCreateRequest"]["required"].append("roles")
    answer = _gate(tmp_path, released, current)
    assert answer.returncode == 1, answer.stdout


def test_an_answer_bound_dropped_or_loosened_fails_the_gate_and_is_named(tmp_path, released):
    current = _copy(released)
    user = current["components"]["schemas"]["User"]["properties"]
    del user["username"]["maxLength"]
    user["bio"]["maxLength"] *= 2
    answer = _gate(tmp_path, released, current)
    assert answer.returncode == 1, answer.stdout
    assert "response.bound.loosen: components.schemas.User.properties.username: maxLength" in (
        answer.stderr
    )
    assert "response.bound.loosen: components.schemas.User.properties.bio: maxLength" in (
        answer.stderr
    )


def test_an_answer_bound_added_or_tightened_is_not_breaking(tmp_path, released):
    current = _copy(released)
    user = current["components"]["schemas"]["User"]["properties"]
    user["bio"]["maxLength"] //= 2
    user["statusText"]["minLength"] = 1
    answer = _gate(tmp_path, released, current)
    assert answer.returncode == 0, answer.stderr


def test_a_request_bound_tightened_fails_the_gate(tmp_path, released):
    current = _copy(released)
    current["components"]["schemas"]["UserCreateRequest"]["properties"]["name"]["maxLength"] = 8
    answer = _gate(tmp_path, released, current)
    assert answer.returncode == 1, answer.stdout


def test_a_breaking_change_passes_once_the_major_version_moved(tmp_path, released):
    current = _copy(released)
    del current["paths"]["/api/v1/users.info"]
    current["info"]["version"] = "1.0.0"
    answer = _gate(tmp_path, released, current)
    assert answer.returncode == 0, answer.stderr
    assert "major moved (0 -> 1)" in answer.stdout


def test_an_added_operation_is_not_breaking(tmp_path, released):
    current = _copy(released)
    current["paths"]["/api/v1/health-copy"] = current["paths"]["/api/v1/health"]
    current["paths"]["/api/v1/health-copy"]["get"] = dict(
        current["paths"]["/api/v1/health"]["get"], operationId="healthCopy"
    )
    answer = _gate(tmp_path, released, current)
    assert answer.returncode == 0, answer.stderr


@pytest.fixture
def released_browse() -> dict:
    """The folder route, whose answer is one of five shapes (an anyOf openapi-diff
    cannot compare whole)."""
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    spec["paths"] = {"/": spec["paths"]["/"]}
    return spec


def _browse_shapes(spec: dict) -> list:
    return spec["paths"]["/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"][
        "anyOf"
    ]


def test_a_new_shape_of_an_answer_fails_the_gate_until_accepted(tmp_path, released_browse):
    current = _copy(released_browse)
    _browse_shapes(current).append({"$ref": "#/components/schemas/FileHash"})
    answer = _gate(tmp_path, released_browse, current)
    assert answer.returncode == 1
    finding = (
        "response.alternative.add: paths./.get.responses.200.content.application/json"
        ".schema.anyOf: #/components/schemas/FileHash"
    )
    assert finding in answer.stderr

    accepted = f"# asked for by a parameter old clients never send\n{finding}\n"
    assert _gate(tmp_path, released_browse, current, accepted).returncode == 0


def test_a_field_removed_from_one_shape_of_a_long_answer_fails_the_gate(tmp_path, released_browse):
    current = _copy(released_browse)
    shapes = [shape["$ref"].rsplit("/", 1)[1] for shape in _browse_shapes(current)]
    assert len(shapes) > 2, "the folder's answer is a long anyOf, as this test needs"
    last = current["components"]["schemas"][shapes[-1]]
    removed = sorted(last["properties"])[0]
    del last["properties"][removed]
    if removed in last.get("required", []):
        last["required"].remove(removed)
    answer = _gate(tmp_path, released_browse, current)
    assert answer.returncode == 1, answer.stdout
    assert "response.body.scope" in answer.stderr


def test_a_shape_dropped_from_an_answer_is_not_breaking(tmp_path, released_browse):
    current = _copy(released_browse)
    del _browse_shapes(current)[-1]
    answer = _gate(tmp_path, released_browse, current)
    assert answer.returncode == 0, answer.stderr


def test_the_whole_spec_passes_against_the_released_one():
    answer = subprocess.run(
        [str(GATE)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert answer.returncode == 0, answer.stderr
    assert "breaks no client" in answer.stdout
