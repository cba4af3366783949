"""Helpers shared by the auth tests: a gateway with the auth plugin over the echo upstream."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.conftest import InProcessGateway, service

GatewayFactory = Callable[..., Awaitable[InProcessGateway]]
UpstreamFactory = Callable[..., Awaitable[str]]
AuthGateway = Callable[..., Awaitable[InProcessGateway]]


def auth_config(upstream_url: str, consumers: list[dict[str, Any]], auth: dict[str, Any],
                **extra: Any) -> dict[str, Any]:
    """One route `/` to ``upstream_url`` with ``plugins.auth`` = ``auth``, plus an open `/open/`."""
    config: dict[str, Any] = {
        "access_log": {"enabled": False},
        "services": {"up": service(upstream_url)},
        "consumers": consumers,
        "routes": [
            {"name": "open", "match": {"path_prefix": "/open/"}, "service": "up"},
            {"name": "protected", "match": {"path_prefix": "/"}, "service": "up",
             "plugins": {"auth": auth}},
        ],
    }
    config.update(extra)
    return config


@pytest.fixture
async def auth_gateway(gateway: GatewayFactory, upstream: UpstreamFactory) -> AuthGateway:
    """``await auth_gateway(consumers, auth, **extra)``: the echo upstream behind the auth plugin.

    The echo upstream answers JSON with the method, path, query, headers and
    body it received, so a test sees exactly what went upstream.
    """
    url = await upstream()

    async def start(consumers: list[dict[str, Any]], auth: dict[str, Any],
                    **extra: Any) -> InProcessGateway:
        return await gateway(auth_config(url, consumers, auth, **extra))

    return start
