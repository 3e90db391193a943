"""openapi.yaml keeps the shapes client generators read without guessing."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((ROOT / "openapi.yaml").read_text())
# The formats OpenAPI 3.0 and JSON Schema define; generators map these and nothing else.
STANDARD_FORMATS = {
    "int32", "int64", "float", "double", "byte", "binary", "date", "date-time", "password",
    "email", "uri", "uuid", "hostname", "ipv4", "ipv6",
}  # fmt: skip


def _schemas(node, where="#"):
    """Every schema-like mapping in the spec, with where it sits."""
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from _schemas(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _schemas(value, f"{where}/{index}")


def test_info_version_is_the_package_version():
    package = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert SPEC["info"]["version"] == package


def test_info_names_a_contact_and_a_licence():
    assert SPEC["info"]["contact"]["name"] and SPEC["info"]["license"]["name"]


def test_string_enums_are_named_component_schemas():
    top_level = {f"#/components/schemas/{name}" for name in SPEC["components"]["schemas"]}
    inline = {
        where
        for where, node in _schemas(SPEC)
        if node.get("type") == "string" and "enum" in node and where not in top_level
    }
    # A header's fixed value is no type a client generates; an import's user `type` may
    # be null, and so may a batch item's `error`, which a `$ref` (whose siblings 3.0 ignores)
    # could not say.
    assert inline == {
        "#/components/headers/NoStore/schema",
        "#/components/schemas/ImportUserInput/properties/type",
        "#/components/schemas/DownloadBatchResult/properties/error",
    }


def test_no_enum_stands_for_null_alone():
    """A field that is always null is `nullable` with no enum; a nullable enum lists null
    beside its values, as OpenAPI 3.0.3 asks."""
    assert [where for where, node in _schemas(SPEC) if node.get("enum") == [None]] == []
    nullable_enums = [node for _, node in _schemas(SPEC) if node.get("nullable") and "enum" in node]
    assert nullable_enums and all(None in node["enum"] for node in nullable_enums)


def test_formats_are_standard():
    odd = {
        where: node["format"]
        for where, node in _schemas(SPEC)
        if isinstance(node.get("format"), str) and "type" in node
        and node["format"] not in STANDARD_FORMATS
    }  # fmt: skip
    # Connexion routes `/{path}` across slashes only for `format: path`.
    assert odd == {"#/components/parameters/FilePath/schema": "path"}


def test_head_answers_like_get_without_a_body(client):
    get, head = client.get("/api/v1/health"), client.head("/api/v1/health")
    assert (head.status_code, head.content) == (get.status_code, b"")
    assert head.headers["content-type"] == get.headers["content-type"]


def test_an_unserved_method_answers_405_with_allow(client):
    answer = client.delete("/api/v1/health")
    assert answer.status_code == 405
    assert set(answer.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}


def test_no_mapping_repeats_a_key():
    """PyYAML keeps the last of two equal keys; Node's YAML parsers refuse the file."""

    class Strict(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
            repeated = {key for key in keys if keys.count(key) > 1}
            assert not repeated, f"{repeated} repeated at line {node.start_mark.line + 1}"
            return super().construct_mapping(node, deep=deep)

    Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, Strict.construct_mapping)
    yaml.load((ROOT / "openapi.yaml").read_text(), Loader=Strict)  # noqa: S506


def test_no_answer_offers_json_beside_a_range_that_covers_it():
    """A generated client picks an answer's type by its media type: bytes under `*/*`
    (or `application/*`) beside `application/json` make it read JSON as bytes."""
    covering = {"*/*", "application/*"}
    mixed = [
        f"{method.upper()} {path} {status}"
        for path, item in SPEC["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "responses" in operation
        for status, answer in operation["responses"].items()
        if "application/json" in (content := answer.get("content", {})) and covering & set(content)
    ]
    assert mixed == []
