"""Tests for proxy.store: behaviour on both backends, plus Redis failure modes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import pydantic
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from proxy.store import (
    LimitCheck,
    MemoryStore,
    RedisStore,
    Store,
    StoreConfig,
    StoreError,
    create_store,
)

pytestmark = pytest.mark.asyncio

# Generous for tests against a live Redis: timing is not what they check.
_LIVE_TIMEOUT_MS = 2000
# Loose upper bound for "fails fast"; the real figure is ~timeout_ms.
_FAST = 0.5


async def _drop_prefix(url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest_asyncio.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "memory":
        memory = MemoryStore()
        yield memory
        await memory.close()
        return
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    redis_store = RedisStore(url, timeout_ms=_LIVE_TIMEOUT_MS, prefix=prefix)
    try:
        yield redis_store
    finally:
        await redis_store.close()
        await _drop_prefix(url, prefix)


@pytest_asyncio.fixture(params=["memory", "redis"])
async def store_pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Store, Store]]:
    """Two stores that must not see each other's keys."""
    if request.param == "memory":
        yield MemoryStore(), MemoryStore()
        return
    url: str = request.getfixturevalue("redis_url")
    base: str = request.getfixturevalue("redis_prefix")
    a = RedisStore(url, timeout_ms=_LIVE_TIMEOUT_MS, prefix=base + "a:")
    b = RedisStore(url, timeout_ms=_LIVE_TIMEOUT_MS, prefix=base + "b:")
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()
        await _drop_prefix(url, base)


class RedisServer(Protocol):
    """What the `redis_server_factory` fixture (tests/conftest.py) hands out."""

    @property
    def url(self) -> str: ...
    def start(self) -> None: ...
    def kill(self) -> None: ...
    def restart(self) -> None: ...


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------------------
# Behaviour shared by both backends
# ---------------------------------------------------------------------------


async def test_incr_counts_and_reads_back(store: Store) -> None:
    assert await store.incr("c") == 1
    assert await store.incr("c", 5) == 6
    assert await store.incr("c", -2) == 4
    assert await store.get("c") == b"4"
    assert await store.ttl("c") is None


async def test_incr_ttl_expires(store: Store) -> None:
    assert await store.incr("c", ttl=0.2) == 1
    assert await store.incr("c", ttl=0.2) == 2
    remaining = await store.ttl("c")
    assert remaining is not None and 0 < remaining <= 0.2
    await asyncio.sleep(0.3)
    assert await store.get("c") is None
    assert await store.incr("c", ttl=0.2) == 1


async def test_incr_ttl_only_set_on_creation(store: Store) -> None:
    await store.incr("c", ttl=0.3)
    await asyncio.sleep(0.1)
    assert await store.incr("c", ttl=60) == 2
    remaining = await store.ttl("c")
    assert remaining is not None and remaining <= 0.3
    await asyncio.sleep(0.3)
    assert await store.get("c") is None

    # A key created without a ttl keeps having none.
    await store.incr("forever")
    await store.incr("forever", ttl=0.1)
    assert await store.ttl("forever") is None


async def test_incr_on_non_integer_raises_store_error(store: Store) -> None:
    await store.set("s", b"abc")
    with pytest.raises(StoreError):
        await store.incr("s")
    with pytest.raises(StoreError):
        await store.incr("s", ttl=1)
    assert await store.get("s") == b"abc"
    await store.set("win:0", b"abc")  # current window of key "win" at now=0.5
    with pytest.raises(StoreError):
        await store.window_incr("win", 1, now=0.5)
    with pytest.raises(StoreError):  # now "win:0" is the previous window
        await store.window_incr("win", 1, now=1.5)
    await store.set("n", b"41")
    assert await store.incr("n") == 42


async def test_window_incr_weights_previous_window(store: Store) -> None:
    window = 10.0
    for i in range(10):
        assert await store.window_incr("w", window, now=1001.0 + i * 0.5) == pytest.approx(i + 1)
    # 25% into the next window: 75% of the previous window still overlaps.
    assert await store.window_incr("w", window, now=1012.5) == pytest.approx(10 * 0.75 + 1)
    assert await store.window_incr("w", window, now=1015.0) == pytest.approx(10 * 0.5 + 2)
    # Exactly on the next boundary the previous window (2 hits) counts fully.
    assert await store.window_incr("w", window, now=1020.0) == pytest.approx(2 + 1)
    # Two windows later nothing of window 101 is left.
    assert await store.window_incr("w", window, now=1040.0) == pytest.approx(1)
    assert await store.window_incr("w", window, amount=4, now=1049.0) == pytest.approx(5)
    # Window 104 holds 5 hits; 90% into window 105 only 10% of it overlaps.
    assert await store.window_incr("w", window, now=1059.0) == pytest.approx(5 * 0.1 + 1)


async def test_window_incr_fractional_window_and_keys_are_independent(store: Store) -> None:
    assert await store.window_incr("a", 0.5, now=100.0) == pytest.approx(1)
    assert await store.window_incr("a", 0.5, now=100.25) == pytest.approx(2)
    assert await store.window_incr("a", 0.5, now=100.625) == pytest.approx(2 * 0.75 + 1)
    assert await store.window_incr("b", 0.5, now=100.625) == pytest.approx(1)


async def test_window_incr_defaults_to_wall_clock_and_expires(store: Store) -> None:
    assert await store.window_incr("w", 0.1) >= 1
    assert await store.scan("w") != []
    await asyncio.sleep(0.35)  # both window keys expire after 2 * window
    assert await store.scan("w") == []


async def test_set_if_absent(store: Store) -> None:
    assert await store.set_if_absent("nonce", b"first", ttl=0.2) is True
    assert await store.set_if_absent("nonce", b"second", ttl=0.2) is False
    assert await store.get("nonce") == b"first"
    remaining = await store.ttl("nonce")
    assert remaining is not None and 0 < remaining <= 0.2
    await asyncio.sleep(0.3)
    assert await store.set_if_absent("nonce", b"third", ttl=0.2) is True
    assert await store.get("nonce") == b"third"


async def test_get_set_delete_ttl(store: Store) -> None:
    assert await store.get("k") is None
    assert await store.ttl("k") is None
    await store.set("k", b"\x00binary\xff")
    assert await store.get("k") == b"\x00binary\xff"
    assert await store.ttl("k") is None

    await store.set("k", b"v2", ttl=5)
    remaining = await store.ttl("k")
    assert remaining is not None and 4 < remaining <= 5
    # A plain set replaces the value and clears the expiry, as in Redis.
    await store.set("k", b"v3")
    assert await store.ttl("k") is None

    await store.delete("k")
    assert await store.get("k") is None
    assert await store.ttl("k") is None
    await store.delete("k")  # deleting a missing key is fine

    await store.set("short", b"x", ttl=0.2)
    await asyncio.sleep(0.3)
    assert await store.get("short") is None
    assert await store.ttl("short") is None


async def test_invalid_ttls_are_rejected(store: Store) -> None:
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            await store.set("k", b"v", ttl=bad)
        with pytest.raises(ValueError):
            await store.set_if_absent("k", b"v", ttl=bad)
        with pytest.raises(ValueError):
            await store.incr("k", ttl=bad)
    with pytest.raises(ValueError):
        await store.window_incr("k", 0)


async def test_scan_by_prefix(store: Store) -> None:
    await store.set("ban:1.2.3.4", b"1", ttl=60)
    await store.set("ban:5.6.7.8", b"1")
    await store.set("other:x", b"1")
    await store.set("ban:gone", b"1", ttl=0.1)
    await store.set("weird*[x]?", b"1")
    await store.set("weirdo", b"1")
    await asyncio.sleep(0.2)

    assert sorted(await store.scan("ban:")) == ["ban:1.2.3.4", "ban:5.6.7.8"]
    assert sorted(await store.scan("")) == [
        "ban:1.2.3.4",
        "ban:5.6.7.8",
        "other:x",
        "weird*[x]?",
        "weirdo",
    ]
    # Glob metacharacters in the prefix are literal.
    assert await store.scan("weird*") == ["weird*[x]?"]
    assert await store.scan("nothing") == []
    assert len(await store.scan("ban:", limit=1)) == 1
    assert await store.scan("ban:", limit=0) == []


async def test_scan_limit_over_many_keys(store: Store) -> None:
    for i in range(300):
        await store.set(f"many:{i}", b"1", ttl=30)
    keys = await store.scan("many:", limit=120)
    assert len(keys) == 120 and len(set(keys)) == 120
    assert len(await store.scan("many:", limit=10_000)) == 300


async def test_prefix_isolation(store_pair: tuple[Store, Store]) -> None:
    a, b = store_pair
    await a.set("shared", b"from-a")
    await b.set("shared", b"from-b")
    assert await a.incr("n") == 1
    assert await b.incr("n") == 1
    assert await a.get("shared") == b"from-a"
    assert await b.get("shared") == b"from-b"
    await a.delete("shared")
    assert await b.get("shared") == b"from-b"
    assert await a.scan("") == ["n"]
    assert sorted(await b.scan("")) == ["n", "shared"]


async def test_concurrent_incr_is_atomic(store: Store) -> None:
    results = await asyncio.gather(*(store.incr("c", ttl=30) for _ in range(100)))
    assert sorted(results) == list(range(1, 101))
    assert await store.get("c") == b"100"


async def test_concurrent_window_incr_is_atomic(store: Store) -> None:
    results = await asyncio.gather(
        *(store.window_incr("w", 60, now=6000.0 + i / 100) for i in range(100))
    )
    assert sorted(results) == [pytest.approx(n) for n in range(1, 101)]


async def test_ping_and_name(store: Store) -> None:
    await store.ping()
    assert store.name in ("memory", "redis")


# ---------------------------------------------------------------------------
# MemoryStore specifics
# ---------------------------------------------------------------------------


async def test_memory_store_is_bounded_by_max_keys() -> None:
    store = MemoryStore(max_keys=100)
    for i in range(5000):
        await store.incr(f"ip:{i}", ttl=60)
    assert len(store) <= 100
    assert await store.get("ip:4999") == b"1"

    untimed = MemoryStore(max_keys=5)
    for i in range(50):
        await untimed.set(f"k{i}", b"v")
    assert len(untimed) == 5
    assert await untimed.get("k49") == b"v"


async def test_memory_store_evicts_soonest_expiring_first() -> None:
    clock = FakeClock()
    store = MemoryStore(max_keys=3, clock=clock)
    await store.set("long", b"1", ttl=100)
    await store.set("short", b"1", ttl=1)
    await store.set("forever", b"1")
    await store.set("new", b"1", ttl=50)
    assert await store.get("short") is None
    assert await store.get("long") == b"1"
    assert await store.get("forever") == b"1"
    assert await store.get("new") == b"1"
    # Updating an existing key never evicts anything.
    await store.set("long", b"2", ttl=100)
    assert len(store) == 3


async def test_memory_store_sweeps_expired_keys_on_writes() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    for i in range(200):
        await store.set(f"k{i}", b"v", ttl=1)
    assert len(store) == 200
    clock.now += 2
    await store.set("fresh", b"v")
    assert len(store) == 1


async def test_memory_store_expiry_follows_its_clock() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    await store.incr("c", ttl=10)
    clock.now += 9.5
    assert await store.ttl("c") == pytest.approx(0.5)
    assert await store.incr("c", ttl=10) == 2
    clock.now += 0.5
    assert await store.get("c") is None


async def test_memory_store_rewrites_do_not_grow_without_bound() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    for i in range(20_000):
        await store.set("same", str(i).encode(), ttl=3600)
    assert len(store) == 1
    assert len(store._expiries) < 5000  # stale expiry entries get compacted
    assert await store.get("same") == b"19999"


async def test_memory_store_rejects_overflow_like_redis() -> None:
    store = MemoryStore()
    await store.set("big", str(2**63 - 1).encode())
    with pytest.raises(StoreError):
        await store.incr("big")
    await store.set("padded", b" 7")
    with pytest.raises(StoreError):
        await store.incr("padded")


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------


async def test_config_defaults_and_validation() -> None:
    cfg = StoreConfig()
    assert cfg.type == "memory" and cfg.timeout_ms == 200 and cfg.prefix == "bastion:"
    with pytest.raises(pydantic.ValidationError):
        StoreConfig.model_validate({"unknown": 1})
    with pytest.raises(pydantic.ValidationError):
        StoreConfig(timeout_ms=0)
    with pytest.raises(pydantic.ValidationError):
        StoreConfig(timeout_ms=10_001)
    with pytest.raises(pydantic.ValidationError):
        StoreConfig.model_validate({"type": "memcached"})


async def test_create_store_builds_each_backend(redis_url: str, redis_prefix: str) -> None:
    memory = create_store(StoreConfig())
    assert isinstance(memory, MemoryStore) and memory.name == "memory"
    await memory.close()

    remote = create_store(
        StoreConfig(type="redis", url=redis_url, prefix=redis_prefix, timeout_ms=2000)
    )
    try:
        assert isinstance(remote, RedisStore) and remote.name == "redis"
        assert remote.prefix == redis_prefix
        await remote.ping()
        await remote.set("k", b"v", ttl=5)
        client = aioredis.Redis.from_url(redis_url)
        try:
            assert await client.get(redis_prefix + "k") == b"v"
        finally:
            await client.aclose()
    finally:
        await remote.close()
        await _drop_prefix(redis_url, redis_prefix)


# ---------------------------------------------------------------------------
# Redis failure modes
# ---------------------------------------------------------------------------


def _all_calls(store: Store) -> list[Callable[[], Any]]:
    return [
        store.ping,
        lambda: store.get("k"),
        lambda: store.set("k", b"v", ttl=1),
        lambda: store.set_if_absent("k", b"v", ttl=1),
        lambda: store.incr("k"),
        lambda: store.incr("k", ttl=1),
        lambda: store.window_incr("k", 1),
        lambda: store.delete("k"),
        lambda: store.ttl("k"),
        lambda: store.scan("k"),
    ]


async def _assert_fails_fast(store: Store) -> None:
    for call in _all_calls(store):
        started = time.perf_counter()
        with pytest.raises(StoreError):
            await call()
        assert time.perf_counter() - started < _FAST


class _TcpServer:
    """A TCP server that counts connections and either hangs or hangs up."""

    def __init__(self, *, hang_up: bool) -> None:
        self.hang_up = hang_up
        self.connections = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> _TcpServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        if self.hang_up:
            writer.close()
            return
        # Swallow whatever arrives and never answer.
        while await reader.read(4096):
            pass


async def test_unreachable_redis_fails_fast(unused_tcp_port: int) -> None:
    store = RedisStore(f"redis://127.0.0.1:{unused_tcp_port}/0", timeout_ms=50)
    try:
        await _assert_fails_fast(store)
    finally:
        await store.close()


async def test_silent_server_times_out_within_timeout() -> None:
    async with _TcpServer(hang_up=False) as server:
        store = RedisStore(server.url, timeout_ms=50)
        try:
            await _assert_fails_fast(store)
            started = time.perf_counter()
            with pytest.raises(StoreError, match="get"):
                await store.get("k")
            # About one timeout: no retries, no backoff.
            assert time.perf_counter() - started < 0.25
        finally:
            await store.close()


@pytest.mark.parametrize("query", ["", "?retry_on_timeout=true&socket_timeout=30"])
@pytest.mark.parametrize("hang_up", [True, False], ids=["hang-up", "silent"])
async def test_redis_calls_are_never_retried(query: str, hang_up: bool) -> None:
    async with _TcpServer(hang_up=hang_up) as server:
        store = RedisStore(server.url + query, timeout_ms=50)
        try:
            started = time.perf_counter()
            with pytest.raises(StoreError):
                await store.get("k")
            assert time.perf_counter() - started < _FAST
            await asyncio.sleep(0.05)  # let any retry attempt show up
            assert server.connections == 1
        finally:
            await store.close()


async def test_script_error_maps_to_store_error(redis_url: str, redis_prefix: str) -> None:
    store = RedisStore(redis_url, timeout_ms=_LIVE_TIMEOUT_MS, prefix=redis_prefix)
    try:
        await store.set("text", b"not a number")
        with pytest.raises(StoreError) as info:
            await store.incr("text", ttl=5)
        assert info.value.__cause__ is not None
    finally:
        await store.close()
        await _drop_prefix(redis_url, redis_prefix)


async def test_scripts_survive_script_flush(
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    server = redis_server_factory()
    store = RedisStore(server.url, timeout_ms=_LIVE_TIMEOUT_MS)
    try:
        assert await store.incr("c", ttl=5) == 1
        client = aioredis.Redis.from_url(server.url)
        try:
            await client.script_flush()
        finally:
            await client.aclose()
        # EVALSHA now gets NOSCRIPT; the script is reloaded transparently.
        assert await store.incr("c", ttl=5) == 2
        assert await store.window_incr("w", 10, now=5.0) == pytest.approx(1)
    finally:
        await store.close()


async def test_store_recovers_after_redis_restart(
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    server = redis_server_factory()
    store = RedisStore(server.url, timeout_ms=200)
    try:
        await store.set("k", b"v")
        assert await store.get("k") == b"v"

        server.kill()
        started = time.perf_counter()
        with pytest.raises(StoreError):
            await store.get("k")
        assert time.perf_counter() - started < _FAST
        with pytest.raises(StoreError):
            await store.ping()

        server.start()
        # Data is gone (no persistence) but the very next call works.
        assert await store.get("k") is None
        await store.set("k", b"again")
        assert await store.get("k") == b"again"

        # Restart with no call while it was down: pooled connections are dead
        # and must be replaced transparently on the next call.
        await asyncio.gather(*(store.incr("n") for _ in range(10)))
        server.restart()
        await asyncio.sleep(0.05)  # let the loop notice the closed sockets
        assert await store.incr("n") == 1
        await store.ping()
    finally:
        await store.close()


# ---------------------------------------------------------------------------
# Atomic multi-rule limits
# ---------------------------------------------------------------------------


async def test_limit_admits_exactly_the_limit_in_a_window(store: Store) -> None:
    check = LimitCheck("lim", limit=5, window=10)
    t = 1_000_000.0  # the start of a window
    verdicts = [await store.limit([check], now=t + i * 0.01) for i in range(8)]
    assert [ok for ok, _ in verdicts] == [True] * 5 + [False] * 3
    _, (state,) = verdicts[4]
    assert state.remaining == 0 and state.limit == 5
    assert state.reset == pytest.approx(10 - 0.04)
    _, (state,) = verdicts[5]
    # Full until this window ends, then the previous window's weight fades.
    assert 10 - 0.05 < state.retry_after <= 20
    # Halfway into the next window half the old count still weighs: 2 fit.
    later = [await store.limit([check], now=t + 15 + i * 0.01) for i in range(4)]
    assert [ok for ok, _ in later] == [True, True, False, False]


async def test_limit_charges_all_rules_or_none(store: Store) -> None:
    wide = LimitCheck("wide", limit=100, window=60)
    narrow = LimitCheck("narrow", limit=2, window=60)
    t = 2_000_040.0
    results = [await store.limit([wide, narrow], now=t) for _ in range(4)]
    assert [ok for ok, _ in results] == [True, True, False, False]
    # The refused requests were not charged to the rule that had room.
    ok, (wide_state,) = await store.limit([wide], now=t)
    assert ok and wide_state.used == 3


async def test_limit_cost_and_concurrency(store: Store) -> None:
    check = LimitCheck("cost", limit=100, window=60, cost=7)
    t = 3_000_000.0
    results = await asyncio.gather(*(store.limit([check], now=t) for _ in range(30)))
    # 14 * 7 = 98 fits, a 15th would make 105: atomic under concurrency.
    assert sum(ok for ok, _ in results) == 14


async def test_breaker_opens_after_failures_and_recovers(
        redis_server_factory: Callable[[], RedisServer]) -> None:
    server = redis_server_factory()
    store = RedisStore(server.url, timeout_ms=50, breaker_failures=2, breaker_cooldown_ms=300)
    try:
        assert await store.incr("b") == 1
        server.kill()
        kinds = []
        for _ in range(4):
            with pytest.raises(StoreError) as info:
                await store.get("b")
            kinds.append(info.value.kind)
        assert kinds[:2] != ["circuit_open"] * 2 and kinds[2:] == ["circuit_open"] * 2
        assert store.breaker_open
        started = time.perf_counter()
        with pytest.raises(StoreError):
            await store.get("b")
        assert time.perf_counter() - started < 0.005  # refused without trying
        server.restart()
        await asyncio.sleep(0.35)
        # After the cooldown one probe goes through; its success closes the breaker.
        await store.set("b", b"2")
        assert not store.breaker_open
        assert await store.get("b") == b"2"
    finally:
        await store.close()
