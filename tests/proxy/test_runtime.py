"""Runtime building: plugin instances, sharing and lifecycle."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
from pydantic import BaseModel, ConfigDict, SecretStr

from proxy.flow import Flow
from proxy.plugin import EmptyConfig, Plugin, register_plugin
from tests.conftest import InProcessGateway, simple_config


class SecretConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    secret: SecretStr


class ShowSecret(Plugin[SecretConfig]):
    """Answers with its secret: which instance served a route is visible."""

    name = "test-show-secret"
    config_model = SecretConfig

    async def on_request_headers(self, flow: Flow) -> None:
        flow.respond(200, self.config.secret.get_secret_value())


register_plugin(ShowSecret)


async def test_routes_differing_only_in_a_secret_get_their_own_instances(
        gateway: Callable[..., Awaitable[InProcessGateway]],
        upstream: Callable[..., Awaitable[str]], http: aiohttp.ClientSession) -> None:
    config = simple_config(await upstream())
    config["routes"] = [
        {"name": name, "match": {"path_prefix": f"/{name}"}, "service": "up",
         "plugins": {"test-show-secret": {"secret": f"secret-of-{name}"}}}
        for name in ("a", "b")
    ]
    gw = await gateway(config)
    for name in ("a", "b"):
        async with http.get(f"{gw.url}/{name}") as resp:
            assert await resp.text() == f"secret-of-{name}"
    # Equal configs do share one instance.
    config["routes"][1]["plugins"]["test-show-secret"]["secret"] = "secret-of-a"
    import yaml

    from proxy.config import parse_config

    runtime = await gw.gateway.reload(parse_config(yaml.safe_dump(
        {"listeners": [{"address": "127.0.0.1:0"}], **config})))
    assert len(runtime.plugins) == 1


class LieAboutLength(Plugin[EmptyConfig]):
    """Sets Content-Length to nonsense both ways, as a buggy plugin might."""

    name = "test-lie-about-length"

    async def on_request_headers(self, flow: Flow) -> None:
        flow.request_headers["Content-Length"] = "3"

    async def on_response_headers(self, flow: Flow) -> None:
        flow.response_headers["Content-Length"] = "5"


register_plugin(LieAboutLength)


async def test_plugins_cannot_break_message_framing(
        gateway: Callable[..., Awaitable[InProcessGateway]],
        upstream: Callable[..., Awaitable[str]], http: aiohttp.ClientSession) -> None:
    config = simple_config(await upstream())
    config["plugins"] = {"test-lie-about-length": {}}
    gw = await gateway(config)
    for _ in range(3):  # same pooled upstream connection: no desync either
        async with http.post(gw.url + "/", data=b"0123456789") as resp:
            echo = await resp.json()  # the whole body, not 5 bytes of it
        assert echo["body"] == "0123456789"
        assert echo["headers"]["Content-Length"] == "10"
