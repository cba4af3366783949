"""Admin endpoints for CC protection's bans (loaded through ``bastion.admin``).

    GET    /cc/bans[?type=ip|cookie][&limit=N]   the current bans (open, like /config)
    DELETE /cc/bans/{type}/{value}               lift one (needs the admin bearer token)

Bans live in the store the running config names, so with ``store.type:
redis`` this sees what every worker and node wrote. With the memory store
each worker keeps its own bans, out of this process's sight: the listing is
then empty and says why.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from typing import Any

from aiohttp import web

from proxy.admin import AdminContext, json_response
from proxy.store import Store, StoreError
from waf.cc import BAN_PREFIX, ban_key, format_network, parse_ban

log = logging.getLogger("bastion.admin")

_TYPES = ("ip", "cookie")
_SID_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")
_MAX_LIMIT = 10_000
# Bans are read this many at a time (each is a GET and a TTL).
_BATCH = 64


def _normalize(ban_type: str, value: str) -> str | None:
    """The value as ban keys spell it, or None if it cannot be one."""
    if ban_type == "cookie":
        return value if _SID_RE.match(value) else None
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None
    return format_network(net)


async def _read(store: Store, key: str) -> dict[str, Any] | None:
    data, remaining = await asyncio.gather(store.get(key), store.ttl(key))
    if data is None:
        return None  # lifted or expired between the scan and now
    ban_type, _, value = key[len(BAN_PREFIX):].partition(":")
    record = parse_ban(data)
    if remaining is None:
        until = record.get("until")
        remaining = max(0.0, until - time.time()) if isinstance(until, float | int) else None
    return {
        "type": ban_type,
        "value": value,
        "remaining": None if remaining is None else round(remaining, 3),
        "reason": record.get("reason", ""),
        "rule": record.get("rule"),
        "action": record.get("action", "deny"),
        "since": record.get("since"),
    }


def add_admin_routes(app: web.Application, ctx: AdminContext) -> None:
    """Add ``/cc/bans`` to the admin API."""

    async def list_bans(request: web.Request) -> web.Response:
        ban_type = request.query.get("type", "")
        if ban_type and ban_type not in _TYPES:
            return json_response({"error": f"type is one of {', '.join(_TYPES)}"}, 400)
        try:
            limit = int(request.query.get("limit", "1000"))
        except ValueError:
            limit = -1
        if not 1 <= limit <= _MAX_LIMIT:
            return json_response({"error": f"limit is a number from 1 to {_MAX_LIMIT}"}, 400)
        store = ctx.store()
        bans: list[dict[str, Any]] = []
        try:
            keys = await store.scan(BAN_PREFIX + (f"{ban_type}:" if ban_type else ""),
                                    limit + 1)
            truncated = len(keys) > limit
            keys = keys[:limit]
            for i in range(0, len(keys), _BATCH):
                found = await asyncio.gather(*(_read(store, k) for k in keys[i:i + _BATCH]))
                bans.extend(b for b in found if b is not None)
        except StoreError as exc:
            return json_response({"error": f"the store is unavailable ({exc.kind})"}, 503)
        bans.sort(key=lambda b: (b["type"], -(b["remaining"] or 0.0), b["value"]))
        body: dict[str, Any] = {"bans": bans, "count": len(bans), "truncated": truncated,
                                "store": store.name}
        if store.name == "memory":
            body["note"] = ("store.type is memory: every worker keeps its own bans, which the "
                            "admin API cannot see; use store.type: redis to share them")
        return json_response(body)

    async def lift_ban(request: web.Request) -> web.Response:
        denied = ctx.authorize(request)
        if denied is not None:
            return denied
        ban_type = request.match_info["type"]
        if ban_type not in _TYPES:
            return json_response({"error": f"type is one of {', '.join(_TYPES)}"}, 400)
        value = _normalize(ban_type, request.match_info["value"])
        if value is None:
            what = "an IP address or CIDR" if ban_type == "ip" else "a session id"
            return json_response({"error": f"the value is not {what}"}, 400)
        store = ctx.store()
        key = ban_key(ban_type, value)
        try:
            if await store.get(key) is None:
                return json_response({"error": "no such ban (it may have expired)",
                                      "type": ban_type, "value": value}, 404)
            await store.delete(key)
        except StoreError as exc:
            return json_response({"error": f"the store is unavailable ({exc.kind})"}, 503)
        log.info("cc ban lifted: %s %s (from %s)", ban_type, value, request.remote)
        return json_response({"lifted": {"type": ban_type, "value": value}})

    app.router.add_get("/cc/bans", list_bans)
    # IPv6 networks carry a '/' (2001:db8::/64): the value takes the rest of the path.
    app.router.add_delete("/cc/bans/{type}/{value:.+}", lift_ban)
