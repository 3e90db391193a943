"""Request validation whose errors name the field and the rule, never the rejected value.

Connexion's validators put the rejected value in the error (`'hunter2' is too short`),
which then reaches the answer and, through Connexion's own log line, the log: a too-short
password or a password sent as a list came back to the client and landed on disk. These
subclasses keep Connexion's parsing and schema checks and replace only the wording
(`Field 'password' must be at least 8 characters long.`), and they log nothing.

The JSON body parser also refuses what Connexion would crash on: JSON nested deeper
than `MAX_JSON_DEPTH` (Python's parser would exhaust its recursion limit), integers too
long to convert, and bodies not in their declared charset.
"""

from __future__ import annotations

import functools
import json

from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem, NonConformingResponseBody
from connexion.utils import is_null, is_nullable
from connexion.validators import (
    FormDataValidator,
    JSONRequestBodyValidator,
    JSONResponseBodyValidator,
    MultiPartFormDataValidator,
    ParameterValidator,
    TextResponseBodyValidator,
)
from jsonschema import Draft4Validator, ValidationError

from handlers.context import spec

# Deepest nesting of arrays and objects a JSON body may have; Rocket.Chat's bodies use
# five levels at most.
MAX_JSON_DEPTH = 32
# Property names come from the client: shown cut to this many characters.
NAME_SHOWN = 64
ENUM_SHOWN = 10


def _name(value) -> str:
    text = str(value)
    return text if len(text) <= NAME_SHOWN else text[:NAME_SHOWN] + "…"


def _path(error: ValidationError) -> str:
    return ".".join(_name(part) for part in error.absolute_path)


def _one_of(values) -> str:
    values = values if isinstance(values, list) else [values]
    shown = ", ".join(str(value) for value in values[:ENUM_SHOWN])
    return shown + (", …" if len(values) > ENUM_SHOWN else "")


def _bound(error: ValidationError, word: str) -> str:
    exclusive = error.schema.get(f"exclusive{word.capitalize()}") is True
    relation = {"minimum": "greater than", "maximum": "less than"}[word]
    if not exclusive:
        relation = {"minimum": "at least", "maximum": "at most"}[word]
    return f"must be {relation} {error.validator_value}"


def _unexpected(error: ValidationError) -> str:
    instance = error.instance if isinstance(error.instance, dict) else {}
    known = set(error.schema.get("properties", {}))
    extra = sorted(str(name) for name in instance if name not in known)
    if not extra:
        return "has an unexpected field"
    more = f" and {len(extra) - 1} more" if len(extra) > 1 else ""
    return f"has an unexpected field '{_name(extra[0])}'{more}"


RULES = {
    "type": lambda e: f"must be of type {_one_of(e.validator_value).replace(', ', ' or ')}",
    "minLength": lambda e: f"must be at least {e.validator_value} characters long",
    "maxLength": lambda e: f"must be at most {e.validator_value} characters long",
    "pattern": lambda e: f"must match the pattern {e.validator_value}",
    "format": lambda e: f"must be a valid {e.validator_value}",
    "enum": lambda e: f"must be one of: {_one_of(e.validator_value)}",
    "minimum": lambda e: _bound(e, "minimum"),
    "maximum": lambda e: _bound(e, "maximum"),
    "multipleOf": lambda e: f"must be a multiple of {e.validator_value}",
    "minItems": lambda e: f"must have at least {e.validator_value} items",
    "maxItems": lambda e: f"must have at most {e.validator_value} items",
    "uniqueItems": lambda e: "must not repeat an item",
    "minProperties": lambda e: f"must have at least {e.validator_value} fields",
    "maxProperties": lambda e: f"must have at most {e.validator_value} fields",
    "additionalProperties": _unexpected,
    "oneOf": lambda e: "must match exactly one of the allowed forms",
    "anyOf": lambda e: "must match one of the allowed forms",
    "allOf": lambda e: "must match all of the required forms",
    "not": lambda e: "has a form that is not allowed",
    "readOnly": lambda e: "is read-only",
    "writeOnly": lambda e: "is write-only",
}


def describe(error: ValidationError, subject: str) -> str:
    """What the request broke: the field and the rule, from the schema and the field's
    name only. `subject` names the whole value (`The body`, `Query parameter 'count'`)."""
    path = _path(error)
    if error.validator == "required":
        instance = error.instance if isinstance(error.instance, dict) else {}
        missing = [name for name in error.validator_value if name not in instance]
        field = ".".join(part for part in (path, _name(missing[0]) if missing else "") if part)
        return f"Field '{field}' is required." if field else f"{subject} misses a field."
    rule = RULES.get(error.validator, lambda e: f"breaks the rule '{e.validator}'")(error)
    if not path:
        return f"{subject} {rule}."
    if subject == BODY:
        return f"Field '{path}' {rule}."
    return f"{subject}, at '{path}', {rule}."


BODY = "The body"


def _too_deep(value) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


TOO_DEEP = f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels."


def parse_json(raw: bytes, encoding: str):
    """The body's JSON value (None for an empty body).

    Raises:
        BadRequestProblem: not text in `encoding`, not JSON, nested too deeply, or
            holding a number too long to read.
    """
    try:
        text = raw.decode(encoding)
    except LookupError:
        raise BadRequestProblem(detail=f"The charset {_name(encoding)} is unknown.") from None
    except UnicodeDecodeError:
        raise BadRequestProblem(
            detail=f"The request body is not valid {encoding.upper()}."
        ) from None
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadRequestProblem(detail=f"The request body is not valid JSON: {error}") from None
    except RecursionError:
        raise BadRequestProblem(detail=TOO_DEEP) from None
    except ValueError:  # an integer with more digits than Python converts
        raise BadRequestProblem(detail="The JSON body holds a number too long to read.") from None
    # Cheap test first: a body with few brackets cannot be deep.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _too_deep(value):
        raise BadRequestProblem(detail=TOO_DEEP)
    return value


class SafeJSONBodyValidator(JSONRequestBodyValidator):
    async def _parse(self, stream, scope):
        return parse_json(b"".join([chunk async for chunk in stream]), self._encoding)

    def _validate(self, body):
        if not self._nullable and body is None:
            raise BadRequestProblem("Request body must not be empty")
        try:
            return self._validator.validate(body)
        except ValidationError as error:
            raise BadRequestProblem(detail=describe(error, BODY)) from None


class _SafeFormValidation:
    def _validate(self, body):
        if not isinstance(body, dict):
            raise BadRequestProblem("Parsed body must be a mapping")
        if self._strict_validation:
            self._validate_params_strictly(body)
        try:
            self._validator.validate(body)
        except ValidationError as error:
            raise BadRequestProblem(detail=describe(error, BODY)) from None


class SafeFormValidator(_SafeFormValidation, FormDataValidator):
    pass


class SafeMultiPartValidator(_SafeFormValidation, MultiPartFormDataValidator):
    pass


# An operation the spec marks so ignores query parameters it does not know, as
# Rocket.Chat's route of the same name does (it validates none); every other operation
# refuses them.
UNKNOWN_QUERY_MARK = "x-ferry-unknown-query-parameters"


@functools.cache
def ignoring_unknown_query() -> frozenset[tuple[str, str]]:
    """(METHOD, path) of every operation marked `x-ferry-unknown-query-parameters: ignored`."""
    return frozenset(
        (method.upper(), path)
        for path, item in spec()["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and operation.get(UNKNOWN_QUERY_MARK) == "ignored"
    )


class SafeParameterValidator(ParameterValidator):
    def validate(self, scope):
        # Built for one operation, so the mark holds for every request it sees.
        if (scope.get("method"), scope.get("path")) in ignoring_unknown_query():
            self.strict_validation = False
        return super().validate(scope)

    @staticmethod
    def validate_parameter(parameter_type, value, param, param_name=None):
        subject = f"{parameter_type.capitalize()} parameter '{param['name']}'"
        if is_nullable(param) and is_null(value):
            return None
        if value is None:
            return f"{subject} is required." if param.get("required") else None
        try:
            Draft4Validator(
                param.get("schema", param), format_checker=Draft4Validator.FORMAT_CHECKER
            ).validate(value)
        except ValidationError as error:
            return describe(error, subject)
        return None


class _SafeResponseValidation:
    def _validate(self, body):
        try:
            self.validator.validate(body)
        except ValidationError as error:
            raise NonConformingResponseBody(
                detail="Response body does not conform to specification. "
                + describe(error, "The response body")
            ) from None


class SafeJSONResponseValidator(_SafeResponseValidation, JSONResponseBodyValidator):
    pass


class SafeTextResponseValidator(_SafeResponseValidation, TextResponseBodyValidator):
    pass


VALIDATOR_MAP = {
    "parameter": SafeParameterValidator,
    "body": MediaTypeDict(
        {
            "*/*json": SafeJSONBodyValidator,
            "application/x-www-form-urlencoded": SafeFormValidator,
            "multipart/form-data": SafeMultiPartValidator,
        }
    ),
    "response": MediaTypeDict(
        {
            "*/*json": SafeJSONResponseValidator,
            "text/plain": SafeTextResponseValidator,
        }
    ),
}
