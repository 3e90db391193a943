"""What Ferry tells operators: Prometheus metrics and state-change log lines.

One `Telemetry` per app (so tests can build many apps): its own CollectorRegistry, fed
where things happen. The download manager and the import service call it on each state
change; the request middleware calls it once per request. Nothing here runs per chunk:
bytes in flight are read from the manager's in-memory counters at scrape time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ferry import __version__
from ferry.kernel.logs import event, redact_text, redact_url
from ferry.kernel.statuses import DownloadKind, DownloadStatus, ImportStep

# The classic text format every Prometheus scrapes: `text/plain; version=0.0.4`.
METRICS_CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# No `*_created` series: they double every counter and Prometheus' text format has no
# use for them. (A process-wide switch; Ferry is the only user of the library here.)
disable_created_metrics()

# Request latency buckets (seconds): API calls are milliseconds, file bodies may be long.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# The `operation` label of requests no spec operation matched.
UNMATCHED = "unmatched"

# Import operations whose last status is remembered (to report changes only): the
# newest ones, as one runs at a time; an unbounded table would grow with every import.
IMPORT_STATUSES_KEPT = 1000

request_log = logging.getLogger("ferry.access")
download_log = logging.getLogger("ferry.downloads")
import_log = logging.getLogger("ferry.imports")


class Telemetry:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.downloads_started = Counter(
            "ferry_downloads_started",
            "Downloads queued, by kind (file, import, pending-file, pending-avatar).",
            ["kind"],
            registry=registry,
        )
        self.downloads_resumed = Counter(
            "ferry_downloads_resumed",
            "Downloads a crash cut short that went on from their part files, by kind.",
            ["kind"],
            registry=registry,
        )
        self.downloads_completed = Counter(
            "ferry_downloads_completed",
            "Downloads that finished with the whole file, by kind.",
            ["kind"],
            registry=registry,
        )
        self.downloads_failed = Counter(
            "ferry_downloads_failed",
            "Downloads that failed, by kind and error code (NETWORK_ERROR, ...).",
            ["kind", "error"],
            registry=registry,
        )
        self.downloads_cancelled = Counter(
            "ferry_downloads_cancelled",
            "Downloads cancelled by a user, by kind.",
            ["kind"],
            registry=registry,
        )
        self.import_statuses = Counter(
            "ferry_import_operations",
            "Import operations that entered each status (importer_done, ...), by importer.",
            ["importer", "status"],
            registry=registry,
        )
        self.webhooks = Counter(
            "ferry_webhook_deliveries",
            "Webhook deliveries by outcome: delivered, or failed (after every retry).",
            ["outcome"],
            registry=registry,
        )
        self.requests = Counter(
            "ferry_http_requests",
            "HTTP requests answered, by operationId and status code.",
            ["operation", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "ferry_http_request_duration_seconds",
            "Time from request to the end of the answer, by operationId.",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        ProcessCollector(registry=registry)
        registry.register(_Live(self))
        self._download_stats: Callable[[], dict] | None = None
        self._lock = threading.Lock()
        self._import_status: OrderedDict[str, str] = OrderedDict()

    def webhook_outcome(self, outcome: str) -> None:
        self.webhooks.labels(outcome).inc()

    def uptime(self) -> float:
        return time.monotonic() - self.started

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def watch_downloads(self, stats: Callable[[], dict]) -> None:
        """`stats()` -> {"starting": n, "downloading": n, "bytes": total bytes received}."""
        self._download_stats = stats

    def download_stats(self) -> dict:
        if self._download_stats is None:
            return {DownloadStatus.STARTING: 0, DownloadStatus.DOWNLOADING: 0, "bytes": 0}
        return self._download_stats()

    # --- downloads (called by the download manager) ------------------------------------

    def download_started(self, record: dict) -> None:
        self.downloads_started.labels(record.get("kind") or DownloadKind.FILE).inc()
        self._queued(record, "download.started", f"download {record['id']} queued")

    def download_resumed(self, record: dict) -> None:
        self.downloads_resumed.labels(record.get("kind") or DownloadKind.FILE).inc()
        self._queued(record, "download.resumed", f"download {record['id']} resumes after a restart")

    @staticmethod
    def _queued(record: dict, name: str, message: str) -> None:
        event(
            download_log,
            name,
            message,
            download_id=record["id"],
            kind=record.get("kind") or DownloadKind.FILE,
            status=record["status"],
            url=redact_url(record["url"]),
            path=record.get("file_path"),
        )

    def download_answered(self, record: dict) -> None:
        event(
            download_log,
            "download.downloading",
            f"download {record['id']} receiving",
            download_id=record["id"],
            kind=record.get("kind") or DownloadKind.FILE,
            status=record["status"],
            expected_size=record.get("expected_size"),
            path=record.get("file_path"),
        )

    def download_finished(self, record: dict) -> None:
        kind, status, error = (
            record.get("kind") or DownloadKind.FILE,
            record["status"],
            record.get("error"),
        )
        if status == DownloadStatus.COMPLETED:
            self.downloads_completed.labels(kind).inc()
        elif status == DownloadStatus.CANCELLED:
            self.downloads_cancelled.labels(kind).inc()
        else:
            self.downloads_failed.labels(kind, error or "UNKNOWN").inc()
        event(
            download_log,
            f"download.{status}",
            f"download {record['id']} {status}" + (f": {error}" if error else ""),
            level=logging.INFO if status != DownloadStatus.FAILED else logging.WARNING,
            download_id=record["id"],
            kind=kind,
            status=status,
            error=error,
            reason=redact_text(record.get("message") or "") if error else None,
            bytes=record.get("current_size"),
            path=record.get("file_path"),
        )

    # --- imports (called by the import service) ----------------------------------------

    def import_status(self, operation: dict) -> None:
        """Count and log `operation`'s status if it differs from the last one seen."""
        op_id, status = operation["_id"], operation["status"]
        with self._lock:
            if self._import_status.get(op_id) == status:
                return
            previous = self._import_status.pop(op_id, None)
            self._import_status[op_id] = status  # newest last
            if len(self._import_status) > IMPORT_STATUSES_KEPT:
                self._import_status.popitem(last=False)
        importer = operation.get("importerKey") or "unknown"
        self.import_statuses.labels(importer, status).inc()
        failed = status == ImportStep.FAILED
        event(
            import_log,
            "import.status",
            f"import {op_id} {status}" + (f" (was {previous})" if previous else ""),
            level=logging.WARNING if failed else logging.INFO,
            operation_id=op_id,
            importer=importer,
            status=status,
            previous=previous,
            error=redact_text(str(operation.get("error"))) if failed else None,
        )

    # --- requests (called by the request middleware) -----------------------------------

    def request_finished(
        self,
        *,
        method: str,
        path: str,
        status: int,
        seconds: float,
        operation: str | None,
        user_id: str | None,
    ) -> None:
        label = operation or UNMATCHED
        self.requests.labels(label, str(status)).inc()
        self.latency.labels(label).observe(seconds)
        event(
            request_log,
            "http.request",
            f"{method} {path} {status} {seconds * 1000:.1f} ms",
            method=method,
            path=path,
            status=status,
            duration_ms=round(seconds * 1000, 3),
            operation=operation,
            user_id=user_id,
        )


class _Live:
    """Values read from the services at scrape time, not counted as they change."""

    def __init__(self, telemetry: Telemetry):
        self._telemetry = telemetry

    def describe(self):
        return []

    def collect(self):
        stats = self._telemetry.download_stats()
        active = GaugeMetricFamily(
            "ferry_downloads_active",
            "Downloads queued (starting) or receiving (downloading) now.",
            labels=["status"],
        )
        for status in (DownloadStatus.STARTING, DownloadStatus.DOWNLOADING):
            active.add_metric([status.value], stats[status])
        yield active
        yield CounterMetricFamily(
            "ferry_download_bytes",
            "Bytes downloaded: finished downloads plus those in flight.",
            value=stats["bytes"],
        )
        info = GaugeMetricFamily("ferry_build_info", "Ferry's version.", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        yield GaugeMetricFamily(
            "ferry_uptime_seconds",
            "Seconds since this server started.",
            value=self._telemetry.uptime(),
        )
