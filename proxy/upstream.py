"""Services: endpoints, load balancing and passive health.

Health is passive and per worker: an endpoint that fails ``max_failures``
times in a row (connect error, reset, timeout, or a retryable 5xx) is ejected
for ``eject_seconds``. When every endpoint is ejected the service keeps
sending to all of them (Envoy's "panic mode"): a guess beats a certain 503.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

from proxy.config import ServiceConfig


@dataclass(eq=False)
class Endpoint:
    url: str
    weight: int
    netloc: str = field(init=False)
    failures: int = 0
    ejected_until: float = 0.0
    # Smooth weighted round robin (as nginx does it) keeps a running weight.
    current_weight: int = 0

    def __post_init__(self) -> None:
        self.netloc = urlsplit(self.url).netloc

    def healthy(self, now: float) -> bool:
        return self.ejected_until <= now


class Service:
    def __init__(self, name: str, config: ServiceConfig, builtin_echo_url: str | None = None,
                 previous: Service | None = None) -> None:
        self.name = name
        self.config = config
        self.endpoints: list[Endpoint] = []
        old = {e.url: e for e in previous.endpoints} if previous else {}
        for ep in config.endpoints:
            url = ep.url
            if url == "builtin:echo":
                if builtin_echo_url is None:
                    raise ValueError("builtin:echo is only available under `bastion run`")
                url = builtin_echo_url
            endpoint = Endpoint(url, ep.weight)
            if url in old:  # keep health across reloads
                endpoint.failures = old[url].failures
                endpoint.ejected_until = old[url].ejected_until
            self.endpoints.append(endpoint)
        self.timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=config.connect_timeout, sock_read=config.read_timeout
        )
        self._rr = 0
        self.ejections = 0

    def pick(self, exclude: Collection[Endpoint] = ()) -> Endpoint:
        """The next endpoint, skipping ejected ones and those already tried."""
        if len(self.endpoints) == 1:
            return self.endpoints[0]
        now = time.monotonic()
        candidates = [e for e in self.endpoints if e.healthy(now) and e not in exclude]
        if not candidates:
            candidates = [e for e in self.endpoints if e not in exclude] or self.endpoints
        if len(candidates) == 1:
            return candidates[0]
        if self.config.load_balancing == "weighted":
            total = 0
            best = candidates[0]
            for e in candidates:
                e.current_weight += e.weight
                total += e.weight
                if e.current_weight > best.current_weight:
                    best = e
            best.current_weight -= total
            return best
        self._rr += 1
        return candidates[self._rr % len(candidates)]

    def report_success(self, endpoint: Endpoint) -> None:
        endpoint.failures = 0

    def report_failure(self, endpoint: Endpoint) -> bool:
        """Count a failure; True when this one ejected the endpoint."""
        endpoint.failures += 1
        now = time.monotonic()
        if endpoint.failures >= self.config.health.max_failures and endpoint.healthy(now):
            endpoint.ejected_until = now + self.config.health.eject_seconds
            endpoint.failures = 0
            self.ejections += 1
            return True
        return False
