"""Directory listings sorted by name, modification time or size, either way round."""

import os

import pytest


@pytest.fixture
def tree(files_dir):
    for name, size, mtime in (("b.txt", 30, 2_000), ("a.txt", 10, 3_000), ("c.txt", 20, 1_000)):
        path = files_dir / name
        path.write_bytes(b"x" * size)
        os.utime(path, (mtime, mtime))
    (files_dir / "z-dir").mkdir()
    (files_dir / ".hidden").write_bytes(b"x" * 99)
    return files_dir


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["z-dir", "a.txt", "b.txt", "c.txt"]),
        ("?order=desc", ["z-dir", "c.txt", "b.txt", "a.txt"]),
        ("?sort=mtime", ["z-dir", "c.txt", "b.txt", "a.txt"]),
        ("?sort=mtime&order=desc", ["z-dir", "a.txt", "b.txt", "c.txt"]),
        ("?sort=size", ["z-dir", "a.txt", "c.txt", "b.txt"]),
        ("?sort=size&order=desc&count=2", ["z-dir", "b.txt"]),
    ],
)
def test_listing_sorts_with_directories_first(client, admin, tree, query, expected):
    body = client.get(f"/{query}", headers=admin.bearer).json()
    assert [entry["name"] for entry in body["entries"]] == expected
    sized = {entry["name"]: (entry["size"], entry["modified"]) for entry in body["entries"]}
    if "b.txt" in sized:
        assert sized["b.txt"] == (30, 2_000)


def test_nested_listing_sorts_too(client, admin, tree):
    (tree / "z-dir" / "small").write_bytes(b"x")
    (tree / "z-dir" / "big").write_bytes(b"x" * 5)
    body = client.get("/z-dir?sort=size&order=desc", headers=admin.bearer).json()
    assert [entry["name"] for entry in body["entries"]] == ["big", "small"]


def test_unknown_sort_is_a_400(client, admin, tree):
    response = client.get("/?sort=owner", headers=admin.bearer)
    assert response.status_code == 400
