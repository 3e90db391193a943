"""Every example in openapi.yaml is valid against the schema it illustrates, and every
operation shows one for each request body, required parameter and answer with a body."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from openapi_schema_validator import OAS30Validator

ROOT = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((ROOT / "openapi.yaml").read_text())
METHODS = ("get", "put", "post", "delete", "patch")
# Besides 127.0.0.1, an example names only hosts under reserved names that never resolve.
NEVER_RESOLVED = (".example.test", ".invalid")


def _resolve(node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        target = SPEC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _examples(media: dict) -> list[tuple[str, object]]:
    found = [("example", media["example"])] if "example" in media else []
    for name, example in (media.get("examples") or {}).items():
        found.append((name, _resolve(example)["value"]))
    return found


def _operations():
    for path, item in SPEC["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method], item.get("parameters", [])


def _illustrated() -> list[tuple[str, dict, object]]:
    """(where, schema, example) for every example the spec gives."""
    cases = []
    for path, method, operation, shared in _operations():
        where = f"{method.upper()} {path}"
        for parameter in map(_resolve, [*shared, *operation.get("parameters", [])]):
            if "example" in parameter:
                cases.append(
                    (f"{where} {parameter['name']}", parameter["schema"], parameter["example"])
                )
        body = _resolve(operation.get("requestBody", {}))
        for media_type, media in (body.get("content") or {}).items():
            for name, value in _examples(media):
                cases.append((f"{where} body {media_type} {name}", media["schema"], value))
        for status, answer in operation["responses"].items():
            for media_type, media in (_resolve(answer).get("content") or {}).items():
                if media_type == "text/event-stream":
                    continue  # the example is the stream's text; the schema, one parsed event
                for name, value in _examples(media):
                    cases.append((f"{where} {status} {media_type} {name}", media["schema"], value))
    return cases


@pytest.mark.parametrize(
    ("where", "schema", "example"), _illustrated(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_example_is_valid_against_its_schema(where, schema, example):
    validator = OAS30Validator({**schema, "components": SPEC["components"]})
    errors = [error.message for error in validator.iter_errors(example)]
    assert errors == [], f"{where}: {errors}"


def _unillustrated(operation: dict, shared: list) -> list[str]:
    """What an operation leaves without an example: required parameters, request
    bodies and answers, each per media type."""
    missing = [
        f"parameter {parameter['name']}"
        for parameter in map(_resolve, [*shared, *operation.get("parameters", [])])
        if parameter.get("required") and not ("example" in parameter or parameter.get("examples"))
    ]
    body = _resolve(operation.get("requestBody", {}))
    missing += [
        f"body {media_type}"
        for media_type, media in (body.get("content") or {}).items()
        if not _examples(media)
    ]
    for status, answer in operation["responses"].items():
        missing += [
            f"{status} {media_type}"
            for media_type, media in (_resolve(answer).get("content") or {}).items()
            if not _examples(media)
        ]
    return missing


def test_every_operation_shows_each_request_and_answer():
    gaps = {
        f"{method.upper()} {path}": missing
        for path, method, operation, shared in _operations()
        if (missing := _unillustrated(operation, shared))
    }
    operations = len(list(_operations()))
    covered = operations - len(gaps)
    assert gaps == {}, f"{covered} of {operations} operations fully illustrated; missing: {gaps}"


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_example_urls_name_only_hosts_that_never_resolve():
    hosts = {
        urlsplit(text).hostname
        for _, _, example in _illustrated()
        for text in _strings(example)
        if text.startswith(("http://", "https://"))
    }
    assert hosts, "no example names a URL"
    assert {
        host for host in hosts if host != "127.0.0.1" and not host.endswith(NEVER_RESOLVED)
    } == set()
