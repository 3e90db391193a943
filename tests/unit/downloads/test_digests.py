"""The digest of a file while it is written: in file order whatever order the pieces
arrive in, with what they never held read back from the file."""

from __future__ import annotations

import hashlib
import os
import random
import threading

import pytest

from ferry.downloads import digests
from ferry.downloads.digests import FileDigest
from ferry.downloads.policy import DOWNLOAD_CANCELLED, WRITE_ERROR, FetchError
from tests.support.remote import pattern_bytes

SIZE = 3 * 1024 * 1024 + 11


@pytest.fixture
def part(tmp_path):
    fd = os.open(tmp_path / "file.part", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    yield fd
    os.close(fd)


def write(fd: int, digest: FileDigest, body: bytes, start: int, end: int, *, held: bool) -> None:
    os.pwrite(fd, body[start:end], start)
    digest.wrote(start, end - start, body[start:end] if held else None)


def pieces(size: int, step: int) -> list[tuple[int, int]]:
    return [(start, min(start + step, size)) for start in range(0, size, step)]


def test_pieces_written_in_order_give_the_files_sha256(part):
    body = pattern_bytes(SIZE)
    with FileDigest(part) as digest:
        for start, end in pieces(SIZE, 100_000):
            write(part, digest, body, start, end, held=True)
        assert digest.finish(SIZE) == {"sha256": hashlib.sha256(body).hexdigest()}


def test_segments_arriving_out_of_order_are_hashed_in_file_order(part):
    body = pattern_bytes(SIZE)
    segments = [pieces(SIZE, 65_536)[i::4] for i in range(4)]
    # Interleave the segments' writes the way parallel connections do, later ones first.
    order = [piece for round_ in zip(*reversed(segments), strict=False) for piece in round_]
    order += [p for segment in segments for p in segment if p not in order]
    random.Random(7).shuffle(order)
    with FileDigest(part, ("sha256", "md5")) as digest:
        for start, end in order:
            write(part, digest, body, start, end, held=True)
        assert digest.finish(SIZE) == {
            "sha256": hashlib.sha256(body).hexdigest(),
            "md5": hashlib.md5(body).hexdigest(),
        }


def test_parallel_writers_and_spliced_bytes_hash_like_the_whole_file(part):
    body = pattern_bytes(SIZE)
    quarter = -(-SIZE // 4)
    with FileDigest(part, ("sha256", "sha1")) as digest:

        def segment(index: int) -> None:
            first, last = index * quarter, min((index + 1) * quarter, SIZE)
            for start, end in pieces(last - first, 50_000):
                # Odd segments splice: their bytes never reach Python.
                write(part, digest, body, first + start, first + end, held=index % 2 == 0)

        writers = [threading.Thread(target=segment, args=(i,)) for i in range(4)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        assert digest.finish(SIZE) == {
            "sha256": hashlib.sha256(body).hexdigest(),
            "sha1": hashlib.sha1(body).hexdigest(),
        }


def test_a_resume_hashes_the_bytes_on_disk_once_then_what_arrives(part):
    body = pattern_bytes(SIZE)
    margin = 4096
    os.pwrite(part, body[: SIZE // 2], 0)  # left by the run that stopped
    with FileDigest(part) as digest:
        digest.wrote(0, SIZE // 2 - margin)
        # The resume fetches `margin` bytes again before the first hole.
        for start, end in pieces(SIZE - (SIZE // 2 - margin), 70_000):
            offset = SIZE // 2 - margin
            write(part, digest, body, offset + start, offset + end, held=True)
        assert digest.finish(SIZE)["sha256"] == hashlib.sha256(body).hexdigest()


def test_held_bytes_beyond_the_queue_bound_are_read_back_instead(part, monkeypatch):
    monkeypatch.setattr(digests, "QUEUED_BYTES", 200_000)
    body = pattern_bytes(SIZE)
    with FileDigest(part) as digest:
        for start, end in pieces(SIZE, 150_000):
            write(part, digest, body, start, end, held=True)
            assert digest._queued_bytes <= 200_000
        assert digest.finish(SIZE)["sha256"] == hashlib.sha256(body).hexdigest()


def test_finishing_before_every_byte_was_written_is_refused(part):
    body = pattern_bytes(SIZE)
    with FileDigest(part) as digest:
        write(part, digest, body, 0, 1000, held=True)
        write(part, digest, body, 2000, SIZE, held=True)
        with pytest.raises(ValueError, match="1000 of"):
            digest.finish(SIZE)


def test_a_file_shorter_than_reported_fails_as_a_write_error(part):
    os.pwrite(part, b"x" * 1000, 0)
    with FileDigest(part) as digest:
        digest.wrote(0, 5000)
        with pytest.raises(FetchError) as failure:
            digest.finish(5000)
    assert failure.value.code == WRITE_ERROR


def test_a_cancel_ends_the_wait_for_bytes_still_to_be_read_back(part, monkeypatch):
    body = pattern_bytes(SIZE)
    os.pwrite(part, body, 0)
    cancel, reading, released = threading.Event(), threading.Event(), threading.Event()
    real = os.preadv

    def stuck_read(*args):
        reading.set()
        released.wait(10)  # a read back from a disk that takes its time
        return real(*args)

    monkeypatch.setattr(digests.os, "preadv", stuck_read)
    with FileDigest(part) as digest:
        digest.wrote(0, SIZE)
        assert reading.wait(10)
        cancel.set()
        with pytest.raises(FetchError) as failure:
            digest.finish(SIZE, cancel)
        released.set()
    assert failure.value.code == DOWNLOAD_CANCELLED


def hashing_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("ferry-fetch-digest")]


def test_bytes_hashed_by_their_reader_need_no_hashing_thread(part):
    body = pattern_bytes(SIZE)
    before = hashing_threads()
    for algorithms in [("sha256",), ("sha256", "sha512")]:
        with FileDigest(part, algorithms) as digest:
            for start, end in pieces(SIZE, 100_000):
                buffer = bytearray(body[start:end])
                os.pwrite(part, buffer, start)
                digest.hash_now(start, memoryview(buffer))
                buffer[:] = b"\0" * len(buffer)  # reused at once, as a pooled buffer is
            if len(algorithms) == 1:  # a second one is hashed alongside, on a thread
                assert hashing_threads() == before
            assert digest.finish(SIZE) == {
                name: hashlib.new(name, body).hexdigest() for name in algorithms
            }


def test_bytes_hashed_by_their_reader_wait_for_those_queued_before_them(part):
    # A first chunk handed over (read back from the file), the rest hashed by the reader.
    body = pattern_bytes(SIZE)
    split = 2 * 1024 * 1024 + 5
    with FileDigest(part) as digest:
        write(part, digest, body, 0, split, held=False)
        for start, end in pieces(SIZE - split, 65_536):
            start, end = start + split, end + split
            os.pwrite(part, body[start:end], start)
            digest.hash_now(start, body[start:end])
        assert digest.finish(SIZE) == {"sha256": hashlib.sha256(body).hexdigest()}


def test_bytes_hashed_by_their_reader_must_follow_those_reported(part):
    with FileDigest(part) as digest:
        digest.hash_now(0, b"abc")
        with pytest.raises(ValueError):
            digest.hash_now(10, b"def")
        digest.wrote(20, 5, b"ahead")
        with pytest.raises(ValueError):
            digest.hash_now(3, b"def")


def test_the_rest_is_handed_over_once_what_came_before_is_hashed(part):
    body = pattern_bytes(SIZE)
    elsewhere = {"sha256": hashlib.sha256(body).hexdigest(), "md5": hashlib.md5(body).hexdigest()}
    with FileDigest(part, ("sha256", "md5")) as digest:
        write(part, digest, body, 0, 1000, held=False)  # read back by the hashing thread
        assert not digest.hand_over(999)  # not where the reported bytes end
        assert digest.hand_over(1000)  # waited for the read back
        assert digest.algorithms == ["sha256", "md5"]
        with pytest.raises(ValueError):
            digest.adopt(SIZE, {"sha256": elsewhere["sha256"]})
        digest.adopt(SIZE, elsewhere)
        assert digest.finish(SIZE) == elsewhere
        assert not digest.hand_over(SIZE)  # adopted: nothing more to hand over


def test_bytes_written_ahead_keep_the_rest_from_being_handed_over(part):
    body = pattern_bytes(SIZE)
    with FileDigest(part) as digest:
        write(part, digest, body, 2000, 3000, held=True)
        assert not digest.hand_over(0)
