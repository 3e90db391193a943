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


def _list_at(spec: dict, location: tuple):
    node = spec
    for part in location:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node if isinstance(node, list) else None


def main(released_path: str, current_path: str, outdir: str) -> None:
    released = contract(yaml.safe_load(Path(released_path).read_text()))
    current = contract(yaml.safe_load(Path(current_path).read_text()))
    pairs, findings = variants(released, current)
    for number, (old, new) in enumerate(pairs):
        Path(outdir, f"{number:02d}-released.json").write_text(json.dumps(old))
        Path(outdir, f"{number:02d}-current.json").write_text(json.dumps(new))
    for finding in findings:
        print(finding)


if __name__ == "__main__":
    main(*sys.argv[1:4])
