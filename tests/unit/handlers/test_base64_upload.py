"""Splitting uploadImportFile's JSON: the file's characters to a spool, the rest kept small."""

import io
import json

import pytest

from ferry.kernel.errors import PayloadTooLarge
from handlers.base64_upload import FIELDS_LIMIT, FileFieldSplitter


def split(body: bytes, chunk: int = 7) -> tuple[bytes, bytes, bool]:
    sink = io.BytesIO()
    splitter = FileFieldSplitter(sink)
    for start in range(0, len(body), chunk):
        splitter.feed(body[start : start + chunk])
    return splitter.finish(), sink.getvalue(), splitter.found


@pytest.mark.parametrize("chunk", [1, 3, 7, 4096])
def test_the_file_goes_to_the_sink_and_the_rest_stays_json(chunk):
    body = json.dumps({"importerKey": "csv", "binaryContent": "QUFB+/==", "fileName": "a,b:c"})
    rest, file, found = split(body.encode(), chunk)
    assert found and file == b"QUFB+/=="
    assert json.loads(rest) == {"importerKey": "csv", "binaryContent": "", "fileName": "a,b:c"}


@pytest.mark.parametrize("chunk", [1, 2, 5, 100])
def test_escapes_split_across_chunks_are_unescaped(chunk):
    body = b'{"binaryContent": "QU\\/B\\u0041x\\u00e9\\n", "k": "\\"binaryContent\\""}'
    rest, file, _ = split(body, chunk)
    assert file == b"QU/BAx!\n"
    assert json.loads(rest) == {"binaryContent": "", "k": '"binaryContent"'}


def test_only_the_top_level_key_is_taken_and_an_escaped_key_counts():
    body = b'{"nested": {"binaryContent": "keep"}, "binary\\u0043ontent": "QUFB"}'
    rest, file, _ = split(body)
    assert file == b"QUFB"
    assert json.loads(rest) == {"nested": {"binaryContent": "keep"}, "binaryContent": ""}


def test_a_repeated_key_keeps_the_last_value_as_json_does():
    rest, file, _ = split(b'{"binaryContent": "QUFB", "binaryContent": "QkJC"}')
    assert file == b"QkJC"


@pytest.mark.parametrize(
    "body",
    [b'{"binaryContent": 5}', b'["binaryContent", "x"]', b'{"x": "binaryContent": "y"}', b""],
)
def test_anything_else_passes_through_untouched(body):
    rest, file, found = split(body)
    assert rest == body and file == b"" and not found


def test_an_unterminated_file_leaves_invalid_json_for_the_parser():
    rest, _, _ = split(b'{"binaryContent": "QUFB')
    with pytest.raises(ValueError):
        json.loads(rest)


def test_the_other_fields_are_bounded():
    with pytest.raises(PayloadTooLarge):
        split(b'{"fileName": "' + b"a" * (FIELDS_LIMIT + 1) + b'"}', 4096)
    rest, _, _ = split(b'{"binaryContent": "' + b"A" * (4 * FIELDS_LIMIT) + b'"}', 4096)
    assert len(rest) < 100
