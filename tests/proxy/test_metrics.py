"""Metrics: batched observations must expose exactly what direct ones would."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from proxy.metrics import _LATENCY_BUCKETS, Metrics


def samples(text: str, name: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith(name):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def test_batched_histogram_matches_direct_observe() -> None:
    rng = random.Random(7)
    values = [rng.choice([0.0, 0.001, 0.0007, 0.3, 31.0, 7.5]) * rng.random() for _ in range(500)]
    values += [*_LATENCY_BUCKETS, 100.0]  # exactly on each bound, and past the last

    metrics = Metrics()
    for v in values:
        metrics.observe_request("r", 200, v)
    batched = metrics.exposition().decode()

    reference = CollectorRegistry()
    direct = Histogram("bastion_request_duration_seconds", "x", ["route"],
                       buckets=_LATENCY_BUCKETS, registry=reference)
    for v in values:
        direct.labels("r").observe(v)
    expected = generate_latest(reference).decode()

    got = samples(batched, "bastion_request_duration_seconds_")
    want = samples(expected, "bastion_request_duration_seconds_")
    assert got.keys() == want.keys() and got
    for key, value in want.items():
        if key.endswith("_created") or "_created{" in key:
            continue
        assert abs(got[key] - value) < 1e-6, key
    assert samples(batched, "bastion_requests_total")[
        'bastion_requests_total{route="r",status="200"}'] == len(values)


def test_nothing_is_lost_between_flushes() -> None:
    metrics = Metrics()
    for i in range(10):
        metrics.observe_request("a", 200 + i % 2, 0.01)
        if i == 4:
            metrics.flush()
    text = metrics.exposition().decode()
    counts = samples(text, "bastion_requests_total")
    assert counts['bastion_requests_total{route="a",status="200"}'] == 5
    assert counts['bastion_requests_total{route="a",status="201"}'] == 5
