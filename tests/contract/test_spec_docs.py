"""The contract documents itself: what a reader of the docs or of generated client code sees."""

from pathlib import Path

import yaml

SPEC = yaml.safe_load((Path(__file__).parents[2] / "openapi.yaml").read_text())
METHODS = ("get", "put", "post", "delete", "patch")


def operations():
    for path, item in SPEC["paths"].items():
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {path}", item[method]


def undescribed(schema, where):
    """Schemas and properties below `schema` that a reader gets no description for."""
    if not isinstance(schema, dict) or "$ref" in schema:
        return
    for name, prop in (schema.get("properties") or {}).items():
        if "$ref" not in prop and not prop.get("description"):
            yield f"{where}.{name}"
        yield from undescribed(prop, f"{where}.{name}")
    for key in ("items", "additionalProperties"):
        yield from undescribed(schema.get(key), f"{where}[]")
    for key in ("allOf", "anyOf", "oneOf"):
        for i, part in enumerate(schema.get(key) or []):
            yield from undescribed(part, f"{where}/{key}{i}")


def inline_schemas():
    for name, schema in SPEC["components"]["schemas"].items():
        yield f"#/components/schemas/{name}", schema
    for name, response in SPEC["components"]["responses"].items():
        for media, content in response.get("content", {}).items():
            yield f"#/components/responses/{name} {media}", content["schema"]
    for label, op in operations():
        for media, content in op.get("requestBody", {}).get("content", {}).items():
            yield f"{label} body {media}", content["schema"]
        for status, response in op["responses"].items():
            for media, content in response.get("content", {}).items():
                yield f"{label} {status} {media}", content.get("schema")


def test_every_operation_reads_well_in_docs_and_generated_code():
    ids = []
    for label, op in operations():
        for field in ("summary", "description", "tags", "operationId"):
            assert op.get(field), f"{label} has no {field}"
        assert op["operationId"].isidentifier(), f"{label}: {op['operationId']} is no identifier"
        ids.append(op["operationId"])
    assert len(ids) == len(set(ids))


def test_every_schema_and_property_is_described():
    missing = [
        name
        for name, schema in SPEC["components"]["schemas"].items()
        if not schema.get("description")
    ]
    for where, schema in inline_schemas():
        missing += list(undescribed(schema, where))
    assert not missing, "no description: " + ", ".join(missing)


def test_every_parameter_is_described():
    params = list(SPEC["components"]["parameters"].values())
    for _, op in operations():
        params += [p for p in op.get("parameters", []) if "$ref" not in p]
    for item in SPEC["paths"].values():
        params += [p for p in item.get("parameters", []) if "$ref" not in p]
    assert [p["name"] for p in params if not p.get("description")] == []
