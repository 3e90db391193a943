"""Archive battery against a real `ferry serve`: bombs, traversal names, links, broken
and strangely encoded exports for every importer that takes a file.

Each upload must end as a failed operation with a readable reason, or as a prepared
one whose warnings say what was skipped; the server must keep answering; and its peak
resident memory (VmHWM) must stay far below what the bombs inflate to.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import tarfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.live.test_downloads_live import Ferry

pytestmark = [pytest.mark.live, pytest.mark.slow]

MB = 1024**2
# What one bomb inflates to; the server may grow by a fraction of it, never by all of it.
BOMB = 128 * MB
MAX_GROWTH = 120 * MB

CSV_USERS = "billy.bob, billy.bob@example.com, Billy Bob\n"
SLACK_USERS = [{"id": "U1", "name": "ann", "profile": {"email": "ann@example.test"}}]
SLACK_CHANNELS = [{"id": "C1", "name": "general", "creator": "U1", "members": ["U1"]}]
MEMBER_LIST = "username,email,status,a,b,c,id,fullname,display\nann,ann@example.test,Member\n"


def zip_bytes(entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return out.getvalue()


def zeros_member(name: str, size: int = BOMB, fill: bytes = b"\0") -> bytes:
    """A zip whose one member `name` inflates to `size` bytes of `fill`."""
    out = io.BytesIO()
    archive = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED)
    with archive, archive.open(name, "w") as member:
        block = fill * MB
        for _ in range(size // MB):
            member.write(block)
    return out.getvalue()


def lying_sizes(data: bytes, declared: int = 100) -> bytes:
    """Rewrites every declared uncompressed size (local and central) to `declared`."""
    patched = bytearray(data)
    position = 0
    while (position := patched.find(b"PK\x03\x04", position)) >= 0:
        struct.pack_into("<I", patched, position + 22, declared)
        position += 4
    position = 0
    while (position := patched.find(b"PK\x01\x02", position)) >= 0:
        struct.pack_into("<I", patched, position + 24, declared)
        position += 4
    return bytes(patched)


def symlink_entry(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (0o120777 << 16) | 0
    return info, target.encode()


def flip(data: bytes, at: float = 0.5) -> bytes:
    position = int(len(data) * at)
    return (
        data[:position]
        + bytes(b ^ 0xFF for b in data[position : position + 64])
        + data[position + 64 :]
    )


def zip_cases(key: str, good: list[tuple[str, bytes]], users_name: str) -> dict[str, bytes]:
    """Hostile variants of a valid zip export whose users file is `users_name`."""
    valid = zip_bytes(good)
    bomb = zeros_member(users_name)
    inner = zip_bytes([("inner.zip", zeros_member("x.bin", 64 * MB))])
    cases = {
        "ratio bomb": bomb,
        "ratio bomb of text": zeros_member(users_name, fill=b"a"),
        "sizes that lie": lying_sizes(bomb),
        "nested bomb": zip_bytes([("layer.zip", inner), ("other.zip", inner)]),
        "zip-slip ../": zip_bytes([(f"../../{users_name}", good[0][1]), *good[1:]]),
        "absolute name": zip_bytes([(f"/tmp/{users_name}", good[0][1])]),
        "backslash traversal": zip_bytes([(f"..\\..\\{users_name}", good[0][1])]),
        "drive letter": zip_bytes([(f"C:/{users_name}", good[0][1])]),
        # zipfile cuts a name at NUL, so the NUL goes in afterwards.
        "NUL in a name": zip_bytes([(f"{users_name}@.png", good[0][1])]).replace(
            b"@.png", b"\0.png"
        ),
        "symlink member": zip_bytes([symlink_entry(users_name, "/etc/passwd"), *good[1:]]),
        "symlink beside data": zip_bytes([*good, symlink_entry("link", "../../../etc")]),
        "truncated half": valid[: len(valid) // 2],
        "truncated to 10 bytes": valid[:10],
        "central directory cut": valid[:-10],
        "corrupted body": flip(valid, 0.3),
        "corrupted directory": flip(valid, 0.9),
        "empty file": b"",
        "not an archive": b"\x89PNG\r\n\x1a\n" + os.urandom(2048),
        "utf-16 without BOM": zip_bytes([(n, d.decode().encode("utf-16-le")) for n, d in good]),
        "latin-1 bytes": zip_bytes([(n, d + "caf\xe9\n".encode("latin-1")) for n, d in good]),
        "invalid utf-8": zip_bytes([(n, b"\xff\xfe\xfd" + d) for n, d in good]),
        "one endless line": zeros_member(users_name, 40 * MB, fill=b"abcdefgh"),
    }
    if users_name.endswith(".json"):
        cases["deep nesting"] = zip_bytes([(users_name, b"[" * 200_000 + b"]" * 200_000)])
        cases["deep objects"] = zip_bytes(
            [(users_name, b'{"a":' * 100_000 + b"1" + b"}" * 100_000)]
        )
        cases["huge string value"] = zip_bytes(
            [(users_name, b'[{"id":"' + os.urandom(1) * (80 * MB) + b'"}]'), *good[1:]]
        )
        cases["huge number"] = zip_bytes([(users_name, b"[" + b"9" * (20 * MB) + b"]")])
        cases["not an array"] = zip_bytes([(users_name, b'{"users": 1}'), *good[1:]])
        cases["truncated json"] = zip_bytes([(users_name, good[0][1][:-7])])
    return cases


def tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.GNU_FORMAT) as archive:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


def hipchat_cases() -> dict[str, bytes]:
    users = json.dumps(
        [{"User": {"id": 1, "name": "Ann", "mention_name": "ann", "email": "ann@example.test"}}]
    ).encode()
    good = [(member("users.json"), users)]
    valid = tar_gz(good)
    stream = io.BytesIO()
    with gzip.GzipFile(fileobj=stream, mode="wb") as bomb:
        bomb.write(tarfile.TarInfo("users.json").tobuf())
        for _ in range(BOMB // MB):
            bomb.write(b"\0" * MB)
    return {
        "gzip bomb": stream.getvalue(),
        "traversal ../": tar_gz([(member("../../users.json"), users)]),
        "absolute name": tar_gz([(member("/etc/users.json"), users)]),
        "symlink": tar_gz([(member("users.json", tarfile.SYMTYPE, "/etc/passwd"), None)]),
        "hardlink": tar_gz([(member("users.json", tarfile.LNKTYPE, "/etc/passwd"), None)]),
        "device": tar_gz([(member("users.json", tarfile.CHRTYPE), None)]),
        "fifo": tar_gz([(member("users.json", tarfile.FIFOTYPE), None)]),
        "long name header": tar_gz([(member("a" * (4 * MB) + "/users.json"), users)]),
        "truncated half": valid[: len(valid) // 2],
        "truncated to 10 bytes": valid[:10],
        "corrupted": flip(valid, 0.5),
        "not gzip": b"users.json" + os.urandom(1024),
        "empty file": b"",
        "encrypted without password": b"Salted__" + os.urandom(4096),
        "deep nesting": tar_gz([(member("users.json"), b"[" * 200_000 + b"]" * 200_000)]),
        "huge string value": tar_gz(
            [(member("users.json"), b'[{"User":{"name":"' + b"x" * (80 * MB) + b'"}}]')]
        ),
        "utf-16 json": tar_gz([(member("users.json"), users.decode().encode("utf-16"))]),
        "invalid utf-8 json": tar_gz([(member("users.json"), b"\xff\xfe\x00" + users)]),
        "zip instead of tar": zip_bytes([("users.json", users)]),
    }


def member_list_cases() -> dict[str, bytes]:
    good = MEMBER_LIST.encode()
    return {
        "zip instead of CSV": zip_bytes([("users.csv", good)]),
        "one endless line": b"ann," + b"x" * (40 * MB),
        "NUL bytes": good.replace(b"ann", b"a\0nn"),
        "utf-16 with BOM": MEMBER_LIST.encode("utf-16"),
        "utf-16 without BOM": MEMBER_LIST.encode("utf-16-le"),
        "latin-1": good + "caf\xe9,cafe@example.test,Member\n".encode("latin-1"),
        "invalid utf-8": b"\xff\xfe\xfd" + good,
        "only a header": good.splitlines()[0],
        "empty file": b"",
        "gzip of a CSV": gzip.compress(good),
        "binary noise": os.urandom(4096),
        "a million empty rows": b"\n" * 1_000_000,
        "unbalanced quotes": b'username,email\n"ann,ann@example.test\n' * 1000,
    }


def all_cases() -> list[tuple[str, str, Callable[[], bytes]]]:
    slack_good = [
        ("users.json", json.dumps(SLACK_USERS).encode()),
        ("channels.json", json.dumps(SLACK_CHANNELS).encode()),
    ]
    csv_good = [("users.csv", CSV_USERS.encode()), ("channels.csv", b"general,billy.bob,public,\n")]
    cases = []
    for key, good, users_name in (
        ("csv", csv_good, "users.csv"),
        ("slack", slack_good, "users.json"),
    ):
        cases += [(key, name, data) for name, data in zip_cases(key, good, users_name).items()]
    cases += [("hipchatenterprise", name, data) for name, data in hipchat_cases().items()]
    cases += [("slack-users", name, data) for name, data in member_list_cases().items()]
    return cases


# Variants that are not hostile at all, only unusual: they may import without a warning.
READABLE_AS_IS = {"utf-16 with BOM"}


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def run_case(ferry: Ferry, key: str, data: bytes) -> dict:
    response = requests.post(
        f"{ferry.base}/api/v1/uploadImportFile",
        headers=ferry.headers,
        files={"file": ("export.bin", data, "application/octet-stream")},
        data={"importerKey": key},
        timeout=60,
    )
    if response.status_code != 200:
        return {"state": "refused", "status": response.status_code, "body": response.text}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = ferry.get("/api/v1/import.status").json()
        if status["state"] in ("error", "ready"):
            return status
        time.sleep(0.05)
    return {"state": "stuck", "status": status}


@pytest.fixture
def ferry(tmp_path):
    server = Ferry(tmp_path / "data", tmp_path / "ferry.log")
    yield server
    server.stop()


def test_hostile_archives_fail_readably_with_bounded_memory(ferry):
    cases = all_cases()
    baseline = peak_rss(ferry.process.pid)
    failures = []
    outcomes = {"failed": 0, "warned": 0, "read": 0}
    for key, name, data in cases:
        began = time.monotonic()
        result = run_case(ferry, key, data)
        print(
            f"{key:18} {name:28} {result['state']:8} {time.monotonic() - began:5.1f}s", flush=True
        )
        operation = result.get("operation") or {}
        if result["state"] == "error" and isinstance(operation.get("error"), str):
            outcomes["failed"] += 1
        elif result["state"] == "ready" and operation.get("warnings"):
            outcomes["warned"] += 1
        elif result["state"] == "ready" and name in READABLE_AS_IS:
            outcomes["read"] += 1
        else:
            failures.append((key, name, result))
        if ferry.get("/api/info").status_code != 200:
            failures.append((key, name, "server stopped answering"))
    growth = peak_rss(ferry.process.pid) - baseline
    print(
        f"archive battery: {len(cases)} cases, {len(failures)} failed, {outcomes}, "
        f"peak RSS growth {growth // MB} MiB"
    )
    assert len(cases) >= 70
    assert failures == [], [failure[:2] for failure in failures]
    assert growth < MAX_GROWTH
