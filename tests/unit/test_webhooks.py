"""Webhooks: what is sent and signed, retries with growing delays, failures counted,
refused addresses, and a real POST to a local receiver that checks the signature."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ferry.downloads.policy import FetchError, FetchPolicy
from ferry.events import DOWNLOAD, OPERATION, Event
from ferry.kernel.statuses import EventType
from ferry.webhooks import DELIVERED, FAILED, SIGNATURE_HEADER, Webhooks, post, signature

OPEN = FetchPolicy(allow_private_networks=True)
SECRET = "webhook-secret-for-tests"


def finished(n: int = 1) -> Event:
    record = {"id": f"d{n}", "status": "completed", "url": "https://a.test/f?token=t0p"}
    return Event(n, EventType.DOWNLOAD_COMPLETED, DOWNLOAD, record)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Receiver:
    """A local webhook receiver: answers `statuses` in turn (then 200), keeps each POST."""

    def __init__(self, statuses=(), location: str | None = None):
        self.posts: list[tuple[dict, bytes]] = []
        self.arrived = threading.Event()
        owner, answers = self, list(statuses)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.posts.append((dict(self.headers), body))
                self.send_response(answers.pop(0) if answers else 200)
                if location is not None:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                owner.arrived.set()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_finished_download_is_posted_signed_to_a_real_receiver():
    outcomes = []
    with Receiver() as receiver:
        hooks = Webhooks((receiver.url,), SECRET, OPEN, on_outcome=outcomes.append)
        hooks.start()
        hooks.event(finished())
        assert receiver.arrived.wait(10)
        hooks.stop(5)
    headers, body = receiver.posts[0]
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == f"sha256={expected}"
    assert headers["X-Ferry-Event"] == "download.completed"
    sent = json.loads(body)
    assert sent["type"] == "download.completed" and sent["download"]["id"] == "d1"
    assert "t0p" not in body.decode()
    assert outcomes == [DELIVERED]


def test_only_finishes_are_sent():
    sent = []
    hooks = Webhooks(("http://127.0.0.1:1/",), None, OPEN, send=lambda *a: sent.append(a) or 200)
    progress = Event(1, EventType.DOWNLOAD_PROGRESS, DOWNLOAD, {"id": "d"})
    step = Event(
        2, EventType.IMPORT_STEP, OPERATION, {"id": "o", "step": "importer_importing_users"}
    )
    done = Event(3, EventType.IMPORT_STEP, OPERATION, {"id": "o", "step": "importer_done"})
    for event in (progress, step, done):
        hooks.event(event)
    while (delivery := hooks._next() if hooks._pending else None) is not None:
        hooks.attempt(delivery)
    assert [json.loads(body)["id"] for _, body, _, _ in sent] == [3]
    assert SIGNATURE_HEADER not in sent[0][2]  # no secret, no signature


def test_failures_are_retried_with_doubling_delays_then_counted():
    clock, outcomes, tries = Clock(), [], []

    def failing(target, body, headers, policy):
        tries.append(clock.now)
        return 503

    hooks = Webhooks(
        ("http://127.0.0.1:1/",),
        SECRET,
        OPEN,
        on_outcome=outcomes.append,
        send=failing,
        clock=clock,
        max_attempts=4,
        first_retry=1.0,
    )
    hooks.event(finished())
    while hooks._pending:
        due, _, delivery = hooks._pending[0]
        clock.now = due
        hooks.attempt(hooks._next())
    gaps = [later - earlier for earlier, later in zip(tries, tries[1:], strict=False)]
    assert len(tries) == 4 and outcomes == [FAILED]
    for gap, base in zip(gaps, (1.0, 2.0, 4.0), strict=True):
        assert base <= gap <= base * 1.25


def test_a_receiver_that_recovers_gets_the_event():
    outcomes = []
    with Receiver(statuses=(500,)) as receiver:
        hooks = Webhooks(
            (receiver.url,), SECRET, OPEN, on_outcome=outcomes.append, first_retry=0.01
        )
        hooks.start()
        hooks.event(finished())
        assert receiver.arrived.wait(10)
        for _ in range(500):
            if outcomes:
                break
            threading.Event().wait(0.01)
        hooks.stop(5)
    assert len(receiver.posts) == 2 and outcomes == [DELIVERED]
    assert receiver.posts[0][1] == receiver.posts[1][1]


def test_a_full_queue_drops_and_counts_instead_of_growing():
    outcomes = []
    hooks = Webhooks(("http://127.0.0.1:1/",), None, OPEN, on_outcome=outcomes.append, queue_size=2)
    for n in range(5):
        hooks.event(finished(n))
    assert len(hooks._pending) == 2 and outcomes == [FAILED] * 3


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/hook", "http://10.1.2.3/hook", "http://localhost/hook"]
)
def test_a_private_webhook_address_is_refused_unless_private_networks_are_allowed(url):
    with pytest.raises(FetchError):
        Webhooks((url,), SECRET, FetchPolicy())
    Webhooks((url,), SECRET, OPEN)


def test_a_name_that_resolves_to_a_private_address_is_refused_when_sending():
    policy = FetchPolicy(resolver=lambda host, port: ["127.0.0.1"])
    target = policy.check_url("http://hooks.example.test/")
    with pytest.raises(FetchError) as refused:
        post(target, b"{}", {}, policy)
    assert refused.value.code == "DOMAIN_BLOCKED"


def test_every_redirect_hop_is_checked_by_the_policy():
    policy = FetchPolicy(allow_private_networks=True, blocked_domains=("blocked.test",))
    redirecting = Receiver(statuses=(307,), location="http://hooks.blocked.test/stolen")
    with redirecting as receiver, pytest.raises(FetchError) as refused:
        post(policy.check_url(receiver.url), b"{}", {}, policy)
    assert refused.value.code == "DOMAIN_BLOCKED"
    assert len(receiver.posts) == 1


def test_the_signature_is_hmac_sha256_of_the_body():
    body = b'{"type": "download.completed"}'
    assert signature("k", body) == "sha256=" + hmac.new(b"k", body, "sha256").hexdigest()
