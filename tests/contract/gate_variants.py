"""Prepare two specs for the breaking-change gate's differ.

Usage: gate_variants.py RELEASED CURRENT OUTDIR

Writes OUTDIR/NN-released.json and OUTDIR/NN-current.json pairs for openapi-diff and
prints, one per line, the breaking changes it finds itself in alternative lists.

Both sides lose what never breaks a client (examples, links, prose). openapi-diff's
time grows with the product of the branches of an `anyOf`/`oneOf` (two branches take
a second, three never finish), so a list of more than two branches is compared a
branch at a time: pair 00 holds the whole spec with each such list cut to its first
shared branch, each further pair only the paths holding such a list, cut to the next
shared branch. Branches are paired by what they are (a `$ref`, or the schema
itself), never by position. A branch only one side has is judged here: a new shape
in an answer, or a shape a request may no longer take, breaks a client.

String and list bounds (`ANSWER_BOUNDS`) on schemas only answers carry are judged here
too, and left out of both sides: openapi-diff's time also grows with every bound in a
schema many operations share (bounds on a user's fields took it past five minutes),
and narrowing an answer never breaks a client; a bound an answer drops or loosens does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

DROPPED = {"example", "examples", "links", "summary", "externalDocs"}
ALTERNATIVES = ("anyOf", "oneOf")
LARGEST_LIST_COMPARED_WHOLE = 2


def contract(node, parent: str = ""):
    """The spec without what never breaks a client."""
    if isinstance(node, dict):
        if parent == "properties":  # here a key is a field's name, whatever it is called
            return {key: contract(value, key) for key, value in node.items()}
        # A response must keep a description: an empty one.
        return {
            key: "" if key == "description" else contract(value, key)
            for key, value in node.items()
            if key not in DROPPED
        }
    if isinstance(node, list):
        return [contract(item) for item in node]
    return node


ANSWER_BOUNDS = ("minLength", "maxLength", "pattern", "minItems", "maxItems", "uniqueItems")
_LOWER_BOUNDS = ("minLength", "minItems")
_UPPER_BOUNDS = ("maxLength", "maxItems")


def _resolve(spec: dict, ref: str):
    node = spec
    for part in ref.removeprefix("#/").split("/"):
        node = (
            node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, dict) else None
        )
    return node


def request_schemas(spec: dict) -> set[str]:
    """The component schemas a request (a parameter or a body) can reach."""
    found: set[str] = set()
    seen: set[str] = set()

    def collect(node) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref not in seen:
                seen.add(ref)
                if ref.startswith("#/components/schemas/"):
                    found.add(ref.rsplit("/", 1)[1])
                collect(_resolve(spec, ref))
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    for item in (spec.get("paths") or {}).values():
        collect(item.get("parameters"))
        for operation in item.values():
            if isinstance(operation, dict):
                collect(operation.get("parameters"))
                collect(operation.get("requestBody"))
    return found


def _answer_roots(spec: dict, asked: set[str]):
    """(location, node) of every schema tree only answers carry."""
    for name, schema in ((spec.get("components") or {}).get("schemas") or {}).items():
        if name not in asked:
            yield ("components", "schemas", name), schema
    for name, response in ((spec.get("components") or {}).get("responses") or {}).items():
        yield ("components", "responses", name), response
    for path, item in (spec.get("paths") or {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield ("paths", path, method, "responses"), operation["responses"]


def take_answer_bounds(spec: dict, asked: set[str]) -> dict[tuple, object]:
    """Remove the `ANSWER_BOUNDS` of answer-only schemas from `spec`; returns them by
    (location, keyword)."""
    taken: dict[tuple, object] = {}

    def strip(node, location: tuple) -> None:
        if isinstance(node, dict):
            for key in ANSWER_BOUNDS:
                if key in node and not isinstance(node[key], dict):
                    taken[(*location, key)] = node.pop(key)
            for key, value in node.items():
                strip(value, (*location, key))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                strip(item, (*location, index))

    for location, root in _answer_roots(spec, asked):
        strip(root, location)
    return taken


def bounds_breaking(
    released: dict[tuple, object], current: dict[tuple, object], spec: dict
) -> list[str]:
    """Each bound of a released answer that the current one drops or loosens, where that
    answer's schema is still there (a schema or field gone is openapi-diff's to judge)."""
    findings = []
    for (*location, key), old in released.items():
        if not isinstance(_node_at(spec, tuple(location)), dict):
            continue
        new = current.get((*location, key))
        loosened = (
            new is None
            or (key in _LOWER_BOUNDS and new < old)
            or (key in _UPPER_BOUNDS and new > old)
            or (key == "pattern" and new != old)
            or (key == "uniqueItems" and old and not new)
        )
        if loosened:
            where = ".".join(str(part) for part in location)
            findings.append(f"response.bound.loosen: {where}: {key}")
    return findings


def identity(branch) -> str:
    if isinstance(branch, dict) and set(branch) == {"$ref"}:
        return branch["$ref"]
    return json.dumps(branch, sort_keys=True)


def long_lists(node, location: tuple = ()) -> dict[tuple, list]:
    """Every anyOf/oneOf of more than two branches, by where it is."""
    found: dict[tuple, list] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            here = (*location, key)
            is_list = key in ALTERNATIVES and isinstance(value, list)
            if is_list and len(value) > LARGEST_LIST_COMPARED_WHOLE:
                found[here] = value
            found.update(long_lists(value, here))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.update(long_lists(value, (*location, index)))
    return found


def branches_breaking(location: tuple, released: list, current: list) -> list[str]:
    """What a change of branches does to a client: answers may not grow, requests not shrink."""
    released_ids = {identity(branch) for branch in released}
    current_ids = {identity(branch) for branch in current}
    where = ".".join(str(part) for part in location)
    if "responses" in location:
        added = sorted(current_ids - released_ids)
        return [f"response.alternative.add: {where}: {name}" for name in added]
    removed = sorted(released_ids - current_ids)
    return [f"request.alternative.remove: {where}: {name}" for name in removed]


def shared_branches(released: list, current: list) -> list[str]:
    current_ids = {identity(branch) for branch in current}
    return sorted(name for name in dict.fromkeys(map(identity, released)) if name in current_ids)


def cut(spec: dict, location: tuple, branch_id: str | None) -> None:
    """Leave the list at location with the one branch called branch_id (or none)."""
    node = spec
    for part in location[:-1]:
        node = node[part]
    kept = [branch for branch in node[location[-1]] if identity(branch) == branch_id]
    node[location[-1]] = kept[:1] or [{}]


def variants(released: dict, current: dict) -> tuple[list[tuple[dict, dict]], list[str]]:
    released_lists = long_lists(released)
    current_lists = long_lists(current)
    findings: list[str] = []
    pairings: dict[tuple, list[str]] = {}
    for location in released_lists.keys() | current_lists.keys():
        old = released_lists.get(location) or _list_at(released, location)
        new = current_lists.get(location) or _list_at(current, location)
        if old is None or new is None:
            continue  # the whole operation or schema went or came: openapi-diff judges it
        findings += branches_breaking(location, old, new)
        pairings[location] = shared_branches(old, new)
    rounds = max((len(shared) for shared in pairings.values()), default=1)
    pairs = []
    for round_number in range(max(rounds, 1)):
        sides = [json.loads(json.dumps(released)), json.loads(json.dumps(current))]
        touched_paths: set | None = set()
        for location, shared in pairings.items():
            branch_id = shared[round_number] if round_number < len(shared) else None
            for side in sides:
                if _list_at(side, location) is not None:
                    cut(side, location, branch_id)
            if location[0] == "paths" and touched_paths is not None:
                touched_paths.add(location[1])
            else:  # a shared schema may be reached from any operation
                touched_paths = None
        if round_number > 0 and touched_paths is not None:
            for side in sides:
                side["paths"] = {
                    path: item for path, item in side["paths"].items() if path in touched_paths
                }
        pairs.append((sides[0], sides[1]))
    return pairs, findings


def _node_at(spec: dict, location: tuple):
    node = spec
    for part in location:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _list_at(spec: dict, location: tuple):
    node = _node_at(spec, location)
    return node if isinstance(node, list) else None


def main(released_path: str, current_path: str, outdir: str) -> None:
    released = contract(yaml.safe_load(Path(released_path).read_text()))
    current = contract(yaml.safe_load(Path(current_path).read_text()))
    # A schema either side lets a request reach keeps its bounds for openapi-diff.
    asked = request_schemas(released) | request_schemas(current)
    released_bounds = take_answer_bounds(released, asked)
    current_bounds = take_answer_bounds(current, asked)
    pairs, findings = variants(released, current)
    findings += bounds_breaking(released_bounds, current_bounds, current)
    for number, (old, new) in enumerate(pairs):
        Path(outdir, f"{number:02d}-released.json").write_text(json.dumps(old))
        Path(outdir, f"{number:02d}-current.json").write_text(json.dumps(new))
    for finding in findings:
        print(finding)


if __name__ == "__main__":
    main(*sys.argv[1:4])
