"""Message builders for the workspace storage tests."""

from __future__ import annotations

SECOND = 1_000_000


def message(i, rid="R1", **extra):
    return {
        "_id": f"m{i:03d}",
        "rid": rid,
        "msg": f"text {i}",
        "_sort": i * SECOND,
        "ts": f"t{i}",
        **extra,
    }


def ids_of(messages):
    return [m["_id"] for m in messages]


def write(ws, messages):
    with ws.writer(per_room=10) as writer:
        for item in messages:
            writer.add(item)


def import_file(i, **extra):
    return {
        "downloadUrl": f"https://files.example/{i}",
        "id": f"F{i}",
        "name": f"{i}.png",
        "external": False,
        "source": "slack",
        **extra,
    }
