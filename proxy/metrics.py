"""Prometheus metrics, aggregated across worker processes.

`bastion run` points ``PROMETHEUS_MULTIPROC_DIR`` at a private directory
before any worker starts, so every process writes its samples there and the
admin listener serves their sum. Without that variable (a gateway embedded in
a test, say) the metrics live in this process only.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """Every metric the kernel records; plugins add theirs through ``counter``/``histogram``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._extra: dict[str, Any] = {}
        r = self.registry
        self.requests = Counter("bastion_requests_total", "Requests answered, by route and status",
                                ["route", "status"], registry=r)
        self.duration = Histogram("bastion_request_duration_seconds",
                                  "Time from request start to the end of the response, by route",
                                  ["route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.upstream_duration = Histogram("bastion_upstream_duration_seconds",
                                           "Time until the upstream's response headers, by service",
                                           ["service"], buckets=_LATENCY_BUCKETS, registry=r)
        self.upstream_errors = Counter("bastion_upstream_errors_total",
                                       "Failed upstream attempts, by service and kind",
                                       ["service", "kind"], registry=r)
        self.upstream_retries = Counter("bastion_upstream_retries_total",
                                        "Upstream attempts retried, by service", ["service"],
                                        registry=r)
        self.ejections = Counter("bastion_upstream_ejections_total",
                                 "Endpoints ejected by passive health checks, by service",
                                 ["service"], registry=r)
        self.plugin_decisions = Counter("bastion_plugin_decisions_total",
                                        "Decisions recorded by plugins, by plugin and action",
                                        ["plugin", "action"], registry=r)
        self.config_reloads = Counter("bastion_config_reloads_total",
                                      "Config reload attempts, by result", ["result"], registry=r)
        self.local_errors = Counter("bastion_gateway_errors_total",
                                    "Requests the gateway itself refused, by status",
                                    ["status"], registry=r)
        # Per-request observations are summed here and written out by
        # flush(): in multi-process mode every write takes a lock and touches
        # a shared file, which per request cost more than the rest of the
        # bookkeeping together.
        self._pending_requests: dict[tuple[str, int], int] = {}
        self._pending_durations: dict[tuple[Histogram, str], _HistogramBatch] = {}

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        key = (route, status)
        self._pending_requests[key] = self._pending_requests.get(key, 0) + 1
        self._observe(self.duration, route, seconds)

    def observe_upstream(self, service: str, seconds: float) -> None:
        self._observe(self.upstream_duration, service, seconds)

    def _observe(self, histogram: Histogram, label: str, seconds: float) -> None:
        batch = self._pending_durations.get((histogram, label))
        if batch is None:
            batch = self._pending_durations[(histogram, label)] = _HistogramBatch()
        batch.counts[bisect_left(_LATENCY_BUCKETS, seconds)] += 1
        batch.total += seconds

    def flush(self) -> None:
        """Write what observe_* gathered into the metrics proper."""
        pending, self._pending_requests = self._pending_requests, {}
        for (route, status), n in pending.items():
            self.requests.labels(route, str(status)).inc(n)
        batches, self._pending_durations = self._pending_durations, {}
        for (histogram, label), batch in batches.items():
            batch.apply(histogram.labels(label))

    def counter(self, name: str, documentation: str, labels: list[str]) -> Counter:
        """A plugin's own counter, made once per process however many configs ask."""
        if name not in self._extra:
            self._extra[name] = Counter(name, documentation, labels, registry=self.registry)
        metric: Counter = self._extra[name]
        return metric

    def histogram(self, name: str, documentation: str, labels: list[str],
                  buckets: tuple[float, ...] = _LATENCY_BUCKETS) -> Histogram:
        if name not in self._extra:
            self._extra[name] = Histogram(name, documentation, labels, buckets=buckets,
                                          registry=self.registry)
        metric: Histogram = self._extra[name]
        return metric

    def exposition(self) -> bytes:
        """The text format: the sum over all workers when running multi-process."""
        self.flush()
        if multiprocess_dir():
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return bytes(generate_latest(registry))
        return bytes(generate_latest(self.registry))


class _HistogramBatch:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        # One slot per bucket bound, and one for +Inf.
        self.counts = [0] * (len(_LATENCY_BUCKETS) + 1)
        self.total = 0.0

    def apply(self, child: Any) -> None:
        # prometheus_client has no batched observe(); these are the values its
        # observe() increments (non-cumulative buckets, then the sum).
        # tests/proxy/test_metrics.py checks the exposition they produce.
        for i, n in enumerate(self.counts):
            if n:
                child._buckets[i].inc(n)
        child._sum.inc(self.total)


_shared: Metrics | None = None


def process_metrics() -> Metrics:
    """The one Metrics of this process (metric names may be registered only once)."""
    global _shared
    if _shared is None:
        _shared = Metrics()
    return _shared
