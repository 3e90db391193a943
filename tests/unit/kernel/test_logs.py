"""Log redaction and the logging settings of `ferry serve`."""

import io
import json
import logging
import sys

import pytest

from ferry.cli.flags import config_from
from ferry.cli.main import build_parser
from ferry.kernel.logs import (
    LINE_LIMIT,
    JsonFormatter,
    TextFormatter,
    configure_logging,
    redact_text,
    redact_url,
)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://files.slack.com/files-pri/T1-F2/export.zip?t=xoxe-1-abc",
            "https://files.slack.com/files-pri/T1-F2/export.zip?t=***",
        ),
        ("https://bob:hunter2@example.com/a.csv", "https://***@example.com/a.csv"),
        ("https://tok@example.com/a.csv", "https://***@example.com/a.csv"),
        (
            "https://s3.example.com/b/k?X-Amz-Signature=abc&X-Amz-Credential=def&part=1",
            "https://s3.example.com/b/k?X-Amz-Signature=***&X-Amz-Credential=***&part=1",
        ),
        ("https://h.example/p?token=a&key=b&sig=c&password=d", None),
        (
            "https://h.example/cb#access_token=abc&state=1",
            "https://h.example/cb#access_token=***&state=1",
        ),
        ("https://h.example/plain/path.zip?page=2", "https://h.example/plain/path.zip?page=2"),
        ("/srv/imports/export.zip", "/srv/imports/export.zip"),
    ],
)
def test_redact_url_masks_credentials_and_keeps_the_rest(url, shown):
    redacted = redact_url(url)
    if shown is not None:
        assert redacted == shown
    for secret in ("xoxe-1-abc", "hunter2", "=abc", "=def", "=a&", "=b&", "=c&", "=d"):
        assert secret not in redacted


def test_urls_nested_in_a_query_are_redacted_too():
    nested = (
        "https://app.example/Downloads?download=https%3A%2F%2Fu%3Ap%40h.example%2Fx%3Ft%3Dxoxb-9"
    )
    redacted = redact_url(nested)
    assert "xoxb-9" not in redacted and "u:p" not in redacted and "u%3Ap" not in redacted
    assert redacted.startswith("https://app.example/Downloads?download=https://***@h.example/x")


def test_an_unparseable_url_is_masked_whole():
    assert redact_url("http://[::1/x?t=secret") == "***"


def test_free_text_has_its_urls_and_slack_tokens_redacted():
    text = "h answered HTTP 404 for https://h.example/a?t=secret-1 (token xoxp-12-34)"
    redacted = redact_text(text)
    assert "secret-1" not in redacted and "xoxp-12-34" not in redacted
    assert "HTTP 404 for https://h.example/a?t=***" in redacted


def test_formatters_redact_whatever_a_message_carries():
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "fetching %s", ("https://u:pw@h.example/?t=s3",), None
    )
    for formatter in (JsonFormatter(), TextFormatter()):
        line = formatter.format(record)
        assert "pw@" not in line and "t=s3" not in line


def test_configure_logging_json_writes_one_object_per_line():
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        configure_logging("json", stream)
        logging.getLogger("uvicorn.error").info("Uvicorn running")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[1]:
            root.addHandler(handler)
        root.setLevel(saved[0])
    (line,) = stream.getvalue().splitlines()
    assert json.loads(line)["message"] == "Uvicorn running"


def test_log_format_and_metrics_token_flags():
    args = build_parser().parse_args(["serve", "--log-format", "json"])
    config = config_from(args, {"FERRY_METRICS_TOKEN": "a-metrics-token-long-enough"})
    assert config.log_format == "json"
    assert config.metrics_token == "a-metrics-token-long-enough"
    assert config_from(build_parser().parse_args(["serve"]), {}).log_format == "text"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--log-format", "xml"])
    with pytest.raises(SystemExit, match="FERRY_METRICS_TOKEN"):
        config_from(build_parser().parse_args(["serve"]), {"FERRY_METRICS_TOKEN": "short"})


def test_text_fields_are_quoted_only_when_a_reader_could_misparse_them():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "done", (), None)
    record.ferry_fields = {
        "plain": "a/b.bin",
        "spaced": "my file.bin",
        "tabbed": "a\tb",
        "quoted": 'say "hi"',
        "empty": "",
        "count": 3,
        "skipped": None,
    }
    line = TextFormatter().format(record)
    assert line.endswith(
        ' plain=a/b.bin spaced="my file.bin" tabbed="a\\tb" quoted="say \\"hi\\"" empty="" count=3'
    )


def _record(message, *args, fields=None, exc_info=None):
    record = logging.LogRecord("x", logging.INFO, __file__, 1, message, args, exc_info)
    record.ferry_fields = fields or {}
    return record


FORGERY = "a\r\n2026-01-01 00:00:00 INFO ferry.access: forged\x1b[2J\x85\u2028"


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()], ids=["text", "json"])
def test_control_characters_never_reach_the_log_raw(formatter):
    line = formatter.format(_record("GET %s", FORGERY, fields={"path": FORGERY}))
    assert "\n" not in line and "\r" not in line
    assert not any(char in line for char in "\x1b\x85\u2028")


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()], ids=["text", "json"])
def test_every_line_is_bounded_and_says_it_was_cut(formatter):
    huge = _record("x" * 100_000, fields={"path": "p" * 100_000, "status": 200})
    line = formatter.format(huge)
    assert len(line) <= LINE_LIMIT and "…" in line
    many = _record("m", fields={f"f{i}": "v" * 1000 for i in range(100)})
    assert len(formatter.format(many)) <= LINE_LIMIT


def test_json_lines_cut_down_stay_json_with_their_fixed_keys():
    line = JsonFormatter().format(_record("y" * 20_000, fields={"status": 413, "path": "q" * 9000}))
    body = json.loads(line)
    assert body["level"] == "info" and body["status"] == 413
    assert body["message"].endswith("…") and len(body["message"]) < 20_000


def test_a_traceback_is_indented_so_its_text_cannot_pass_for_a_log_line():
    try:
        raise ValueError(FORGERY)
    except ValueError:
        record = _record("failed", exc_info=sys.exc_info())
    lines = TextFormatter().format(record).split("\n")
    assert lines[0].endswith("failed") and len(lines) > 3
    assert all(line.startswith("  ") for line in lines[1:])
