"""Validation errors in words: the field and the rule, never the value."""

import pytest
from connexion.exceptions import BadRequestProblem
from jsonschema import Draft4Validator

from handlers.validation import BODY, MAX_JSON_DEPTH, describe, parse_json

SECRET = "s3cr3t-value"
SCHEMA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 20, "maxLength": 30, "pattern": "^[a-z]+$"},
        "kind": {"enum": ["a", "b"]},
        "count": {"type": "integer", "minimum": 1, "maximum": 5},
        "tags": {"type": "array", "maxItems": 1, "items": {"type": "string"}},
        "mail": {"type": "string", "format": "email"},
    },
}


@pytest.mark.parametrize(
    ("instance", "expected"),
    [
        ({"name": SECRET[:4]}, "Field 'name' must be at least 20 characters long."),
        ({"name": SECRET * 4}, "Field 'name' must be at most 30 characters long."),
        ({"name": SECRET + "x" * 10}, "Field 'name' must match the pattern ^[a-z]+$."),
        ({"name": [SECRET]}, "Field 'name' must be of type string."),
        ({"name": "a" * 20, "kind": SECRET}, "Field 'kind' must be one of: a, b."),
        ({"name": "a" * 20, "count": 99}, "Field 'count' must be at most 5."),
        ({"name": "a" * 20, "tags": [SECRET, SECRET]}, "Field 'tags' must have at most 1 items."),
        ({"name": "a" * 20, "tags": [5]}, "Field 'tags.0' must be of type string."),
        ({"name": "a" * 20, "mail": SECRET}, "Field 'mail' must be a valid email."),
        ({"name": "a" * 20, SECRET: 1}, f"The body has an unexpected field '{SECRET}'."),
        ({}, "Field 'name' is required."),
        ([SECRET], "The body must be of type object."),
    ],
)
def test_describe_names_the_field_and_the_rule(instance, expected):
    error = next(
        Draft4Validator(SCHEMA, format_checker=Draft4Validator.FORMAT_CHECKER).iter_errors(instance)
    )
    assert describe(error, BODY) == expected


def test_an_unexpected_field_name_is_cut_short():
    error = next(Draft4Validator(SCHEMA).iter_errors({"name": "a" * 20, "x" * 1000: 1}))
    assert len(describe(error, BODY)) < 120


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000,
        b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),
        b'{"a":' * 2000 + b"1" + b"}" * 2000,
        b"9" * 10_000,
        b"\xff",
        b'{"a": ',
    ],
)
def test_parse_json_refuses_with_a_bad_request(raw):
    with pytest.raises(BadRequestProblem):
        parse_json(raw, "utf-8")


def test_parse_json_reads_up_to_the_depth_limit():
    depth = MAX_JSON_DEPTH
    assert parse_json(b"[" * depth + b"]" * depth, "utf-8") is not None
    assert parse_json(b"", "utf-8") is None
    with pytest.raises(BadRequestProblem, match="charset"):
        parse_json(b"{}", "no-such-charset")
