"""ai-statistics through a real gateway: token counts, time to first token and speed, in
/metrics and in the access log."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ai.exchange import AiExchange
from ai.statistics import LabelCap, tokens_per_second
from proxy.config import ConfigError, parse_config
from tests.ai.conftest import AiGatewayFactory, FakeFactory, read_events
from tests.ai.fakes import FakeProvider, Reply, anthropic_error
from tests.conftest import InProcessGateway

CHAT = {"model": "gpt-4o", "messages": [{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": "Hi"}]}
CLAUDE = {**CHAT, "model": "claude"}
GPT = "gpt-4o-2024-08-06"
SONNET = "claude-3-5-sonnet-latest"


def providers(openai: FakeProvider, anthropic: FakeProvider, **extra: Any) -> dict[str, Any]:
    return {
        "providers": {
            "openai": {"type": "openai", "base_url": openai.base_url, "api_keys": ["sk-o"]},
            "anthropic": {"type": "anthropic", "base_url": anthropic.base_url,
                          "api_keys": ["sk-a"]}},
        "models": {"gpt-4o": {"provider": "openai", "model": GPT},
                   "claude": {"provider": "anthropic", "model": SONNET}},
        **extra,
    }


def sample(gw: InProcessGateway, name: str, **labels: str) -> float:
    value = gw.gateway.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def eventually(check: Callable[[], bool], within: float = 3.0) -> None:
    """on_done runs after the client has the last byte of a stream: wait for it."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.01)


def usage_decisions(log_file: Path) -> list[dict[str, Any]]:
    if not log_file.exists():
        return []
    out = []
    for line in log_file.read_text().splitlines():
        record = json.loads(line)
        for d in record.get("decisions", ()):
            if d["plugin"] == "ai-statistics":
                out.append({**d, "_consumer": record.get("consumer"),
                            "_status": record["status"]})
    return out


class Setup:
    def __init__(self, gw: InProcessGateway, log_file: Path) -> None:
        self.gw, self.log_file = gw, log_file

    def tokens(self, kind: str, provider: str = "openai", model: str = GPT,
               consumer: str = "") -> float:
        return sample(self.gw, "bastion_ai_tokens_total", route="ai", consumer=consumer,
                      provider=provider, model=model, type=kind)

    async def decisions(self, n: int) -> list[dict[str, Any]]:
        await eventually(lambda: len(usage_decisions(self.log_file)) >= n)
        return usage_decisions(self.log_file)


@pytest.fixture
async def stats(fake: FakeFactory, ai_gateway: AiGatewayFactory, tmp_path: Path
                ) -> Callable[..., Any]:
    async def start(plugin: dict[str, Any] | None = None, **extra: Any
                    ) -> tuple[Setup, FakeProvider, FakeProvider]:
        openai, anthropic = await fake("openai"), await fake("anthropic")
        log_file = tmp_path / "access.log"
        plugins = {"ai-statistics": plugin or {}, **extra.pop("plugins", {})}
        gw = await ai_gateway(providers(openai, anthropic, **extra.pop("proxy", {})),
                              plugins=plugins,
                              access_log={"enabled": True, "path": str(log_file)}, **extra)
        return Setup(gw, log_file), openai, anthropic

    return start


async def post(http: aiohttp.ClientSession, url: str, body: Any,
               headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with http.post(url, json=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


# ---------------------------------------------------------------------------


async def test_openai_call_counts_tokens_in_metrics_and_the_access_log(
        stats: Callable[..., Any], http: aiohttp.ClientSession) -> None:
    s, _, _ = await stats()
    status, _ = await post(http, s.gw.url + "/v1/chat/completions", CHAT)
    assert status == 200
    [d] = await s.decisions(1)
    assert s.tokens("prompt") == 11 and s.tokens("completion") == 4
    assert sample(s.gw, "bastion_ai_requests_total", route="ai", consumer="", provider="openai",
                  model=GPT, status="200") == 1
    labels = {"route": "ai", "provider": "openai", "model": GPT}
    assert sample(s.gw, "bastion_ai_request_duration_seconds_count", **labels) == 1
    assert sample(s.gw, "bastion_ai_output_tokens_per_second_count", **labels) == 1
    # TTFT is for streams only: a plain answer's is its duration.
    assert sample(s.gw, "bastion_ai_time_to_first_token_seconds_count", **labels) == 0
    assert {k: d[k] for k in ("action", "api", "model", "provider", "provider_model", "stream",
                              "status", "prompt_tokens", "completion_tokens", "total_tokens",
                              "cached_tokens", "attempts")} == {
        "action": "usage", "api": "chat", "model": "gpt-4o", "provider": "openai",
        "provider_model": GPT, "stream": False, "status": 200, "prompt_tokens": 11,
        "completion_tokens": 4, "total_tokens": 15, "cached_tokens": 0, "attempts": 1}
    assert d["ttft_ms"] > 0 and d["duration_ms"] >= d["ttft_ms"]
    assert d["tokens_per_second"] == pytest.approx(4 / (d["duration_ms"] / 1000), rel=0.05)
    assert "error" not in d and "cached" not in d
    # And it is all in the text /metrics serves.
    text = s.gw.gateway.metrics.exposition().decode()
    assert ('bastion_ai_tokens_total{consumer="",model="gpt-4o-2024-08-06",provider="openai",'
            'route="ai",type="prompt"} 11.0') in text


async def test_openai_stream_counts_usage_and_records_time_to_first_token(
        stats: Callable[..., Any], http: aiohttp.ClientSession) -> None:
    s, _, _ = await stats()
    async with http.post(s.gw.url + "/v1/chat/completions",
                         json={**CHAT, "stream": True}) as resp:
        assert resp.status == 200
        await read_events(resp)
    [d] = await s.decisions(1)
    assert (d["stream"], d["prompt_tokens"], d["completion_tokens"]) == (True, 11, 4)
    assert 0 < d["ttft_ms"] <= d["duration_ms"]
    assert d["tokens_per_second"] == pytest.approx(
        4 / ((d["duration_ms"] - d["ttft_ms"]) / 1000), rel=0.05)
    assert s.tokens("prompt") == 11 and s.tokens("completion") == 4
    labels = {"route": "ai", "provider": "openai", "model": GPT}
    assert sample(s.gw, "bastion_ai_time_to_first_token_seconds_count", **labels) == 1
    ttft = sample(s.gw, "bastion_ai_time_to_first_token_seconds_sum", **labels)
    assert ttft == pytest.approx(d["ttft_ms"] / 1000, abs=0.002)
    assert sample(s.gw, "bastion_ai_output_tokens_per_second_count", **labels) == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_calls_are_counted_from_the_translated_usage(
        stream: bool, stats: Callable[..., Any], http: aiohttp.ClientSession) -> None:
    s, _, _ = await stats()
    async with http.post(s.gw.url + "/v1/chat/completions",
                         json={**CLAUDE, "stream": stream}) as resp:
        assert resp.status == 200
        await resp.read()
    [d] = await s.decisions(1)
    assert (d["provider"], d["provider_model"], d["stream"]) == ("anthropic", SONNET, stream)
    assert (d["prompt_tokens"], d["completion_tokens"], d["total_tokens"]) == (21, 6, 27)
    assert s.tokens("prompt", "anthropic", SONNET) == 21
    assert s.tokens("completion", "anthropic", SONNET) == 6
    labels = {"route": "ai", "provider": "anthropic", "model": SONNET}
    assert sample(s.gw, "bastion_ai_time_to_first_token_seconds_count", **labels) == (
        1 if stream else 0)


async def test_consumers_are_labelled_and_errors_counted_by_status(
        stats: Callable[..., Any], http: aiohttp.ClientSession) -> None:
    s, _, anthropic = await stats(
        plugins={"auth": {"any_of": ["key-auth"], "key-auth": {"headers": ["x-api-key"]},
                          "anonymous": "guest"}},
        consumers=[{"name": "alice", "credentials": [
                        {"id": "alice-key", "type": "key-auth", "key": "alice-secret"}]},
                   {"name": "guest"}])
    url = s.gw.url + "/v1/chat/completions"
    assert (await post(http, url, CHAT, {"x-api-key": "alice-secret"}))[0] == 200
    assert (await post(http, url, CHAT, {"x-api-key": "alice-secret"}))[0] == 200
    assert (await post(http, url, CHAT))[0] == 200
    anthropic.replies.append(Reply(status=400, json=anthropic_error(
        "invalid_request_error", "bad request")))
    assert (await post(http, url, CLAUDE, {"x-api-key": "alice-secret"}))[0] == 400
    decisions = await s.decisions(4)
    assert [d["_consumer"] for d in decisions] == ["alice", "alice", "guest", "alice"]
    assert s.tokens("prompt", consumer="alice") == 22
    assert s.tokens("completion", consumer="guest") == 4
    assert sample(s.gw, "bastion_ai_requests_total", route="ai", consumer="alice",
                  provider="anthropic", model=SONNET, status="400") == 1
    failed = decisions[-1]
    assert failed["status"] == 400 and failed["error"] == "bad request"
    assert failed["prompt_tokens"] is None and failed["tokens_per_second"] is None
    # A failed call has no duration or speed sample; it has its request count.
    labels = {"route": "ai", "provider": "anthropic", "model": SONNET}
    assert sample(s.gw, "bastion_ai_request_duration_seconds_count", **labels) == 0


async def test_model_labels_are_capped(stats: Callable[..., Any],
                                       http: aiohttp.ClientSession) -> None:
    # Unknown model names go to OpenAI as written: clients choose the label values.
    s, _, _ = await stats({"max_models": 2}, proxy={"default": {"provider": "openai"}})
    for model in ("gpt-4o", "mine-1", "mine-2", "mine-3"):
        assert (await post(http, s.gw.url + "/v1/chat/completions",
                           {**CHAT, "model": model}))[0] == 200
    decisions = await s.decisions(4)
    assert [d["provider_model"] for d in decisions] == [GPT, "mine-1", "mine-2", "mine-3"]
    assert s.tokens("prompt", model=GPT) == 11
    assert s.tokens("prompt", model="mine-1") == 11
    assert s.tokens("prompt", model="other") == 22
    assert s.tokens("prompt", model="mine-2") == 0


async def test_the_consumer_label_can_be_turned_off_and_the_log_too(
        stats: Callable[..., Any], http: aiohttp.ClientSession) -> None:
    s, _, _ = await stats(
        {"consumer_label": False, "access_log": False},
        plugins={"auth": {"any_of": ["key-auth"], "key-auth": {"headers": ["x-api-key"]}}},
        consumers=[{"name": "alice", "credentials": [
            {"id": "alice-key", "type": "key-auth", "key": "alice-secret"}]}])
    status, _ = await post(http, s.gw.url + "/v1/chat/completions", CHAT,
                           {"x-api-key": "alice-secret"})
    assert status == 200
    await eventually(lambda: s.log_file.exists() and bool(s.log_file.read_text()))
    assert s.tokens("prompt") == 11 and s.tokens("prompt", consumer="alice") == 0
    assert usage_decisions(s.log_file) == []


def test_label_cap_and_speed() -> None:
    cap = LabelCap(2)
    assert [cap(v) for v in ("a", "b", "c", "a", "", "d")] == ["a", "b", "other", "a", "", "other"]
    allow = LabelCap(1, frozenset({"x", "y"}))
    assert [allow(v) for v in ("x", "y", "z")] == ["x", "y", "other"]
    ex = AiExchange(api="chat", route="r", consumer=None, requested_model="m", streaming=True,
                    prompt_text="")
    assert tokens_per_second(ex) is None
    ex.completion_tokens, ex.duration, ex.time_to_first_token = 100, 3.0, 1.0
    assert tokens_per_second(ex) == 50
    ex.time_to_first_token = 2.9995
    assert tokens_per_second(ex) is None  # the whole stream in one read
    ex.streaming = False
    assert tokens_per_second(ex) == pytest.approx(100 / 3)
    ex.duration = 0.0004  # a fast local answer still has a speed
    assert tokens_per_second(ex) == pytest.approx(250_000)


def test_config_is_checked() -> None:
    def load(plugin: dict[str, Any]) -> None:
        parse_config(json.dumps({
            "services": {"u": {"endpoints": [{"url": "http://127.0.0.1:9"}]}},
            "routes": [{"name": "r", "service": "u", "plugins": {"ai-statistics": plugin}}]}),
            "<test>")

    load({"max_models": 5, "models": ["gpt-4o"]})
    with pytest.raises(ConfigError, match="max_consumers"):
        load({"max_consumers": 0})
    with pytest.raises(ConfigError, match="labels"):
        load({"labels": True})


async def test_a_call_refused_before_any_provider_has_no_provider_label(
        stats: Callable[..., Any], http: aiohttp.ClientSession) -> None:
    s, openai, _ = await stats(plugins={"ai-token-ratelimit": {"rules": [
        {"name": "tiny", "by": "ip", "limit": 1, "window": "1h"}]}})
    url = s.gw.url + "/v1/chat/completions"
    assert (await post(http, url, CHAT))[0] == 200  # 1 reserved, 15 charged
    await s.decisions(1)
    assert (await post(http, url, CHAT))[0] == 429
    first, refused = await s.decisions(2)
    assert (first["provider"], first["attempts"]) == ("openai", 1)
    assert (refused["status"], refused["attempts"], refused["prompt_tokens"]) == (429, 0, None)
    assert sample(s.gw, "bastion_ai_requests_total", route="ai", consumer="", provider="",
                  model=GPT, status="429") == 1
    assert len(openai.received) == 1
