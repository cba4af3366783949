"""Async shared-state store (counters, sliding windows, nonces, small caches).

`MemoryStore` is per-process; `RedisStore` shares state between gateway nodes.
Every backend failure surfaces as `StoreError` so callers can choose to fail
open or closed.
"""

from __future__ import annotations

import abc
import asyncio
import heapq
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

import redis.asyncio as aioredis
import redis.exceptions
from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio.connection import BlockingConnectionPool, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.maint_notifications import MaintNotificationsConfig

__all__ = [
    "LimitCheck",
    "LimitState",
    "MemoryStore",
    "RedisStore",
    "Store",
    "StoreConfig",
    "StoreError",
    "create_store",
]

_T = TypeVar("_T")

# Redis integers are signed 64-bit; MemoryStore enforces the same range so both
# backends fail the same way.
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**63 - 1


class StoreError(Exception):
    """The backend is unreachable, timed out, or rejected the operation.

    ``kind`` says which, for metrics: "timeout", "error", "circuit_open" (the
    breaker is refusing calls without trying), or "rejected" (a bad value).
    """

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """One sliding-window limit: at most ``limit`` units per ``window`` seconds under ``key``."""

    key: str
    limit: int
    window: float
    cost: int = 1


@dataclass(frozen=True, slots=True)
class LimitState:
    """A limit's state after a ``Store.limit`` call."""

    limit: int
    # Estimated units used in the sliding window, this request included if admitted.
    used: float
    # Seconds until the current fixed window ends (X-RateLimit-Reset).
    reset: float
    # Seconds until a request of the same cost would be admitted (0 when it would now).
    retry_after: float

    @property
    def remaining(self) -> int:
        return max(0, math.floor(self.limit - self.used))


def _window_position(window: float, now: float) -> tuple[int, float]:
    """(index of the fixed window holding ``now``, fraction of it elapsed)."""
    if not math.isfinite(window) or window <= 0:
        raise ValueError(f"window must be a positive number of seconds, got {window!r}")
    index = math.floor(now / window)
    return index, (now - index * window) / window


def limit_state(check: LimitCheck, current: int, previous: int, elapsed: float) -> LimitState:
    """What counts ``current``/``previous`` mean for ``check`` at ``elapsed`` of the window.

    The estimate is Cloudflare's sliding-window approximation: the previous
    fixed window's count weighted by how much of it the sliding window still
    covers, plus the current window's count.
    """
    w, limit, cost = check.window, check.limit, check.cost
    used = previous * (1.0 - elapsed) + current
    room = limit - cost
    if used + cost - 1e-9 <= limit:
        wait = 0.0
    elif current <= room:
        # The previous window's share has to fade until the cost fits.
        wait = w * (1.0 - elapsed) - (room - current) * w / previous if previous else 0.0
    elif current > 0 and room >= 0:
        # Not before the next window, where this one's count fades in turn.
        wait = w * (1.0 - elapsed) + w * max(0.0, 1.0 - room / current)
    else:
        wait = w * (1.0 - elapsed) + w  # cost above the limit: never, report two windows
    return LimitState(limit, used, w * (1.0 - elapsed), max(0.0, wait))


class StoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["memory", "redis"] = "memory"
    url: str = "redis://127.0.0.1:6379/0"
    # Generous enough for a busy worker's event-loop lag (a call that times out
    # falls back); the breaker keeps a dead Redis from costing this per request.
    timeout_ms: int = Field(200, ge=1, le=10_000)
    prefix: str = "bastion:"
    max_connections: int = Field(64, ge=1)
    # Circuit breaker: this many failures in a row open it; calls then fail
    # at once (no request waits on a dead Redis) until a probe after the cooldown.
    breaker_failures: int = Field(3, ge=1)
    breaker_cooldown_ms: int = Field(1000, ge=1)


def _ttl_ms(ttl: float) -> int:
    if not math.isfinite(ttl) or ttl <= 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
    # Round up so a tiny positive ttl never becomes "no expiry" or an error.
    return max(1, math.ceil(ttl * 1000))


def _window_keys(key: str, window: float, now: float | None) -> tuple[str, str, float]:
    """Return (current key, previous key, weight of the previous window)."""
    if not math.isfinite(window) or window <= 0:
        raise ValueError(f"window must be a positive number of seconds, got {window!r}")
    t = time.time() if now is None else now
    index = math.floor(t / window)
    elapsed = (t - index * window) / window
    weight = min(1.0, max(0.0, 1.0 - elapsed))
    return f"{key}:{index}", f"{key}:{index - 1}", weight


class Store(abc.ABC):
    """Shared key/value state. Keys are given without the store prefix."""

    name: str

    @abc.abstractmethod
    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Atomically add `amount`; `ttl` applies only if this call creates the key."""

    @abc.abstractmethod
    async def window_incr(
        self, key: str, window: float, amount: int = 1, now: float | None = None
    ) -> float:
        """Sliding-window counter: estimated hits in the last `window` seconds.

        Two fixed windows, the previous one weighted by how much of it still
        overlaps the sliding window. Includes this call's `amount`.
        """

    @abc.abstractmethod
    async def limit(self, checks: Sequence[LimitCheck], now: float | None = None
                    ) -> tuple[bool, list[LimitState]]:
        """Several sliding-window limits, decided atomically in one call.

        The request is admitted only if every check has room for its cost;
        then each is charged, otherwise none is. Returns (admitted, states).
        Windows come from the caller's clock (``now``, else wall time), baked
        into the key names, so nodes that agree on the time agree on windows.
        """

    @abc.abstractmethod
    async def set_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        """Store `value` only if `key` does not exist; True if it was stored."""

    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    @abc.abstractmethod
    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store `value`; without `ttl` any previous expiry is cleared."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None: ...

    @abc.abstractmethod
    async def ttl(self, key: str) -> float | None:
        """Remaining seconds; None if the key is missing or never expires."""

    @abc.abstractmethod
    async def scan(self, pattern_prefix: str, limit: int = 1000) -> list[str]:
        """Up to `limit` keys starting with `pattern_prefix` (admin listings)."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StoreError if the backend is unusable."""

    @abc.abstractmethod
    async def close(self) -> None: ...


# ---------------------------------------------------------------------------
# In-process implementation
# ---------------------------------------------------------------------------

_Value = bytes | int
_Entry = tuple[_Value, float | None]  # (value, monotonic expiry or None)

# Expired keys are purged a little on every write, so a single write never
# stalls the event loop however many keys expired at once.
_PURGE_BUDGET: Final = 256


class MemoryStore(Store):
    """Per-process store with lazy expiry and a hard bound on the key count.

    All methods run without awaiting, so each is atomic on the event loop.
    Expiry uses a monotonic clock; expired keys are dropped when touched and
    swept incrementally via a min-heap of expiry times. When `max_keys` is
    reached the soonest-expiring key is evicted (an arbitrary one if none has
    a ttl), so a flood of distinct keys cannot grow memory without bound.
    """

    name = "memory"

    def __init__(
        self,
        max_keys: int = 1_000_000,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        self._max_keys = max_keys
        self._clock = clock
        self._data: dict[str, _Entry] = {}
        # Lazy-deletion heap: an item is stale if the key's current expiry differs.
        self._expiries: list[tuple[float, str]] = []

    def __len__(self) -> int:
        """Number of stored keys, including expired ones not yet purged."""
        return len(self._data)

    def _live(self, key: str, now: float) -> _Entry | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        expires = entry[1]
        if expires is not None and expires <= now:
            del self._data[key]
            return None
        return entry

    def _purge(self, now: float, budget: int = _PURGE_BUDGET) -> None:
        heap = self._expiries
        while budget > 0 and heap and heap[0][0] <= now:
            expires, key = heapq.heappop(heap)
            entry = self._data.get(key)
            if entry is not None and entry[1] == expires:
                del self._data[key]
            budget -= 1

    def _store(self, key: str, value: _Value, expires: float | None, now: float) -> None:
        if key not in self._data:
            self._make_room(now)
        self._data[key] = (value, expires)
        if expires is not None:
            heapq.heappush(self._expiries, (expires, key))
            # Rewriting the same keys with new ttls leaves stale heap items behind.
            if len(self._expiries) > 2 * len(self._data) + 1024:
                self._rebuild_heap()

    def _make_room(self, now: float) -> None:
        self._purge(now)
        while len(self._data) >= self._max_keys:
            if self._expiries:
                expires, key = heapq.heappop(self._expiries)
                entry = self._data.get(key)
                if entry is not None and entry[1] == expires:
                    del self._data[key]
            else:
                # No key has a ttl: evict an arbitrary one (O(1)).
                self._data.popitem()

    def _rebuild_heap(self) -> None:
        self._expiries = [(e[1], k) for k, e in self._data.items() if e[1] is not None]
        heapq.heapify(self._expiries)

    @staticmethod
    def _as_int(value: _Value) -> int:
        if isinstance(value, int):
            return value
        try:
            number = int(value)
        except ValueError:
            number = None
        # Mirror Redis: only canonical decimal strings count as integers.
        if number is None or str(number).encode() != value:
            raise StoreError("value is not an integer")
        return number

    @staticmethod
    def _checked(number: int) -> int:
        if not _INT_MIN <= number <= _INT_MAX:
            raise StoreError("increment would overflow a 64-bit integer")
        return number

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        expires_in = None if ttl is None else _ttl_ms(ttl) / 1000
        now = self._clock()
        entry = self._live(key, now)
        if entry is None:
            value = self._checked(amount)
            expires = None if expires_in is None else now + expires_in
            self._store(key, value, expires, now)
            return value
        value = self._checked(self._as_int(entry[0]) + amount)
        self._data[key] = (value, entry[1])
        self._purge(now)
        return value

    async def window_incr(
        self, key: str, window: float, amount: int = 1, now: float | None = None
    ) -> float:
        current_key, previous_key, weight = _window_keys(key, window, now)
        mono = self._clock()
        current = await self.incr(current_key, amount, ttl=2 * window)
        previous_entry = self._live(previous_key, mono)
        previous = 0 if previous_entry is None else self._as_int(previous_entry[0])
        return previous * weight + current

    async def limit(self, checks: Sequence[LimitCheck], now: float | None = None
                    ) -> tuple[bool, list[LimitState]]:
        t = time.time() if now is None else now
        mono = self._clock()
        counts: list[tuple[str, int, int, float]] = []
        admitted = True
        for check in checks:
            index, elapsed = _window_position(check.window, t)
            current_key = f"{check.key}:{index}"
            entry = self._live(current_key, mono)
            current = 0 if entry is None else self._as_int(entry[0])
            entry = self._live(f"{check.key}:{index - 1}", mono)
            previous = 0 if entry is None else self._as_int(entry[0])
            if previous * (1.0 - elapsed) + current + check.cost > check.limit:
                admitted = False
            counts.append((current_key, current, previous, elapsed))
        states = []
        for check, (current_key, current, previous, elapsed) in zip(checks, counts, strict=True):
            if admitted:
                current = await self.incr(current_key, check.cost, ttl=2 * check.window)
            states.append(limit_state(check, current, previous, elapsed))
        return admitted, states

    async def set_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        expires_in = _ttl_ms(ttl) / 1000
        now = self._clock()
        if self._live(key, now) is not None:
            return False
        self._store(key, bytes(value), now + expires_in, now)
        return True

    async def get(self, key: str) -> bytes | None:
        entry = self._live(key, self._clock())
        if entry is None:
            return None
        value = entry[0]
        return str(value).encode() if isinstance(value, int) else value

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        expires_in = None if ttl is None else _ttl_ms(ttl) / 1000
        now = self._clock()
        self._live(key, now)
        expires = None if expires_in is None else now + expires_in
        self._store(key, bytes(value), expires, now)

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def ttl(self, key: str) -> float | None:
        now = self._clock()
        entry = self._live(key, now)
        if entry is None or entry[1] is None:
            return None
        return entry[1] - now

    async def scan(self, pattern_prefix: str, limit: int = 1000) -> list[str]:
        now = self._clock()
        found: list[str] = []
        if limit <= 0:
            return found
        for key, (_, expires) in self._data.items():
            if key.startswith(pattern_prefix) and (expires is None or expires > now):
                found.append(key)
                if len(found) >= limit:
                    break
        return found

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._data.clear()
        self._expiries.clear()


# ---------------------------------------------------------------------------
# Redis implementation
# ---------------------------------------------------------------------------

# EXISTS + INCRBY + PEXPIRE in one script so "ttl only on creation" is atomic.
_INCR_TTL_LUA: Final = """
local created = redis.call('EXISTS', KEYS[1]) == 0
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if created then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
"""

# KEYS: current window, previous window. ARGV: amount, expiry ms.
# Returns raw counts; the weighting happens client side because Lua numbers
# returned to Redis are truncated to integers.
_WINDOW_LUA: Final = """
local current = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
if not previous then
  return redis.error_reply('previous window value is not an integer')
end
return {current, previous}
"""

# KEYS: per check, its current then previous window. ARGV: the number of
# checks, then per check: limit, weight of the previous window, cost, expiry ms.
# Every check is read first; only if all have room is each one charged.
# Returns {admitted, current_1, previous_1, current_2, previous_2, ...}.
_LIMIT_LUA: Final = """
local n = tonumber(ARGV[1])
local out = {1}
for i = 1, n do
  local base = 1 + (i - 1) * 4
  local current = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local previous = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  if not current or not previous then
    return redis.error_reply('a rate window value is not an integer')
  end
  local limit, weight = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
  if previous * weight + current + tonumber(ARGV[base + 3]) > limit then
    out[1] = 0
  end
  out[2 * i] = current
  out[2 * i + 1] = previous
end
if out[1] == 1 then
  for i = 1, n do
    local base = 1 + (i - 1) * 4
    local cost = tonumber(ARGV[base + 3])
    local value = redis.call('INCRBY', KEYS[2 * i - 1], cost)
    if value == cost then
      redis.call('PEXPIRE', KEYS[2 * i - 1], ARGV[base + 4])
    end
    out[2 * i] = value
  end
end
return out
"""

_REDIS_ERRORS: Final = (redis.exceptions.RedisError, OSError, asyncio.TimeoutError)


def _to_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisStore(Store):
    """Store backed by Redis via redis.asyncio, bounded in time on every call.

    Retries are disabled outright: redis-py's default retry policy takes
    seconds to give up on a dead server, while callers here sit on the request
    path and must decide quickly. Each call is additionally capped by
    `asyncio.timeout`, so waiting for a pooled connection, connecting and the
    command together cannot exceed `timeout_ms`.
    """

    name = "redis"

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        timeout_ms: int = 200,
        prefix: str = "bastion:",
        max_connections: int = 64,
        breaker_failures: int = 3,
        breaker_cooldown_ms: int = 1000,
    ) -> None:
        if timeout_ms < 1:
            raise ValueError("timeout_ms must be >= 1")
        if max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        self._timeout = timeout_ms / 1000
        self._prefix = prefix
        options: dict[str, Any] = dict(parse_url(url))
        # Applied after the URL's query string so e.g. `?retry_on_timeout=true`
        # or a long socket_timeout in the URL cannot re-enable slow failure.
        options.update(
            socket_connect_timeout=self._timeout,
            # No socket_timeout: asyncio.timeout in _call bounds every call,
            # and redis-py's own read timeout costs a task per read.
            socket_timeout=None,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            retry_on_error=[],
            max_connections=max_connections,
            timeout=self._timeout,  # wait for a free pooled connection
            # With maintenance notifications on (redis-py's RESP3 default) the
            # pool skips its stale-connection check, so the first call after a
            # Redis restart would fail, and timeouts get relaxed to seconds.
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
        )
        # Blocking pool: a burst beyond max_connections queues (within the
        # timeout) instead of failing immediately with "Too many connections".
        self._pool = BlockingConnectionPool(**options)
        self._client = aioredis.Redis(connection_pool=self._pool)
        self._incr_ttl = self._client.register_script(_INCR_TTL_LUA)
        self._window = self._client.register_script(_WINDOW_LUA)
        self._limit = self._client.register_script(_LIMIT_LUA)
        # Circuit breaker: after `breaker_failures` failures in a row, calls
        # fail at once for `breaker_cooldown` seconds, then one is let through
        # to probe; its success closes the breaker.
        self._breaker_failures = breaker_failures
        self._breaker_cooldown = breaker_cooldown_ms / 1000
        self._failures = 0
        self._open_until = 0.0
        self._probing = False

    @property
    def prefix(self) -> str:
        return self._prefix

    def _k(self, key: str) -> str:
        return self._prefix + key

    @property
    def breaker_open(self) -> bool:
        return self._failures >= self._breaker_failures

    async def _call(self, op: str, make: Callable[[], Awaitable[_T]]) -> _T:
        probe = False
        if self._failures >= self._breaker_failures:
            if self._probing or time.monotonic() < self._open_until:
                raise StoreError(f"redis {op} skipped: circuit open after repeated failures",
                                 "circuit_open")
            probe = self._probing = True
        try:
            async with asyncio.timeout(self._timeout):
                result = await make()
        except redis.exceptions.ResponseError as exc:
            # The server answered: it is up; the command itself was refused.
            self._failures = 0
            raise StoreError(f"redis {op} failed: {exc}", "rejected") from exc
        except _REDIS_ERRORS as exc:
            self._failures += 1
            if self._failures >= self._breaker_failures:
                self._open_until = time.monotonic() + self._breaker_cooldown
            kind = "timeout" if isinstance(exc, TimeoutError | redis.exceptions.TimeoutError) \
                else "error"
            detail = str(exc) or f"no answer within {self._timeout * 1000:g} ms"
            raise StoreError(f"redis {op} failed: {type(exc).__name__}: {detail}", kind) from exc
        finally:
            if probe:
                self._probing = False
        self._failures = 0
        return result

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        if ttl is None:
            return int(await self._call("incr", lambda: self._client.incrby(self._k(key), amount)))
        px = _ttl_ms(ttl)
        result = await self._call(
            "incr", lambda: self._incr_ttl(keys=[self._k(key)], args=[amount, px])
        )
        return int(result)

    async def window_incr(
        self, key: str, window: float, amount: int = 1, now: float | None = None
    ) -> float:
        # Window boundaries come from the caller's clock (`now`, else wall time)
        # and are baked into the key names, so every node that agrees on time
        # agrees on the windows and both keys are declared for the script.
        current_key, previous_key, weight = _window_keys(key, window, now)
        px = _ttl_ms(2 * window)
        result = await self._call(
            "window_incr",
            lambda: self._window(
                keys=[self._k(current_key), self._k(previous_key)], args=[amount, px]
            ),
        )
        current, previous = int(result[0]), int(result[1])
        return previous * weight + current

    async def limit(self, checks: Sequence[LimitCheck], now: float | None = None
                    ) -> tuple[bool, list[LimitState]]:
        if not checks:
            return True, []
        t = time.time() if now is None else now
        keys: list[str] = []
        args: list[Any] = [len(checks)]
        positions = []
        for check in checks:
            index, elapsed = _window_position(check.window, t)
            positions.append(elapsed)
            keys += [self._k(f"{check.key}:{index}"), self._k(f"{check.key}:{index - 1}")]
            args += [check.limit, repr(1.0 - elapsed), check.cost, _ttl_ms(2 * check.window)]
        result = await self._call("limit", lambda: self._limit(keys=keys, args=args))
        admitted = int(result[0]) == 1
        states = [limit_state(check, int(result[1 + 2 * i]), int(result[2 + 2 * i]), elapsed)
                  for i, (check, elapsed) in enumerate(zip(checks, positions, strict=True))]
        return admitted, states

    async def set_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        px = _ttl_ms(ttl)
        result = await self._call(
            "set_if_absent", lambda: self._client.set(self._k(key), value, px=px, nx=True)
        )
        return bool(result)

    async def get(self, key: str) -> bytes | None:
        result = await self._call("get", lambda: self._client.get(self._k(key)))
        return None if result is None else _to_bytes(result)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        px = None if ttl is None else _ttl_ms(ttl)
        await self._call("set", lambda: self._client.set(self._k(key), value, px=px))

    async def delete(self, key: str) -> None:
        await self._call("delete", lambda: self._client.delete(self._k(key)))

    async def ttl(self, key: str) -> float | None:
        result = int(await self._call("ttl", lambda: self._client.pttl(self._k(key))))
        # -2: missing, -1: no expiry.
        return None if result < 0 else result / 1000

    async def scan(self, pattern_prefix: str, limit: int = 1000) -> list[str]:
        found: dict[str, None] = {}  # SCAN may repeat keys; keep first-seen order
        if limit <= 0:
            return []
        match = _glob_escape(self._prefix + pattern_prefix) + "*"
        strip = len(self._prefix)
        cursor = 0

        async def page() -> tuple[int, list[bytes | str]]:
            next_cursor, batch = await self._client.scan(cursor=cursor, match=match, count=1000)
            return int(next_cursor), list(batch)

        # Each round trip gets its own time bound: a listing over a large
        # keyspace legitimately needs many of them.
        while True:
            cursor, batch = await self._call("scan", page)
            for raw in batch:
                found[_to_bytes(raw).decode("utf-8", "surrogateescape")[strip:]] = None
                if len(found) >= limit:
                    return list(found)
            if cursor == 0:
                return list(found)

    async def ping(self) -> None:
        await self._call("ping", lambda: self._client.ping())

    async def close(self) -> None:
        try:
            await self._client.aclose()
            await self._pool.disconnect()
        except _REDIS_ERRORS as exc:
            raise StoreError(f"redis close failed: {exc}") from exc


def create_store(config: StoreConfig) -> Store:
    """Build the store described by `config` (no I/O happens until first use)."""
    if config.type == "redis":
        return RedisStore(
            config.url,
            timeout_ms=config.timeout_ms,
            prefix=config.prefix,
            max_connections=config.max_connections,
            breaker_failures=config.breaker_failures,
            breaker_cooldown_ms=config.breaker_cooldown_ms,
        )
    return MemoryStore()
