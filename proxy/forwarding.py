"""HTTP proxy semantics: hop-by-hop headers, client IP, X-Forwarded-*."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache

from multidict import CIMultiDict, CIMultiDictProxy

# RFC 9110 §7.6.1 plus the legacy ones proxies have always dropped.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
    "proxy-connection", "proxy-authenticate", "proxy-authorization",
})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def strip_hop_by_hop(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> CIMultiDict[str]:
    """A copy without hop-by-hop headers, those named in Connection, or any Proxy-*."""
    named: set[str] = set()
    for value in headers.getall("Connection", ()):
        named.update(t.strip().lower() for t in value.split(",") if t.strip())
    out: CIMultiDict[str] = CIMultiDict()
    for key, value in headers.items():
        lower = key.lower()
        if lower in HOP_BY_HOP or lower in named or lower.startswith("proxy-"):
            continue
        out.add(key, value)
    return out


# What the gateway itself says about the request; a client's own values for
# these are dropped (or, from a trusted proxy, folded in) rather than passed on.
_FORWARDING = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
                         "x-real-ip", "x-request-id", "forwarded"})

# Who the gateway authenticated: set only by the auth plugin, never taken from
# a client (or a proxy in front), on every route whether it authenticates or not.
IDENTITY_HEADERS = frozenset({"x-consumer-username", "x-consumer-id", "x-consumer-custom-id",
                              "x-consumer-groups", "x-credential-identifier",
                              "x-anonymous-consumer", "x-mse-consumer"})


def upstream_headers(headers: CIMultiDictProxy[str], peer: str, trusted_peer: bool,
                     client_ip: str, request_id: str, scheme: str) -> CIMultiDict[str]:
    """The request headers as the upstream gets them, built in one pass.

    Hop-by-hop headers go. ``X-Forwarded-For`` is the trusted prior chain plus
    the peer; ``X-Forwarded-Proto``/``-Host`` and ``Forwarded`` are believed
    only from a trusted peer; ``X-Real-IP`` is the resolved client address and
    ``X-Request-Id`` the gateway's id. Identity headers (``X-Consumer-*``...)
    go whatever their source: only authentication sets them.
    """
    named: set[str] = set()
    for value in headers.getall("Connection", ()):
        named.update(t.strip().lower() for t in value.split(",") if t.strip())
    out: CIMultiDict[str] = CIMultiDict()
    prior: list[str] = []
    proto = host = None
    for key, value in headers.items():
        lower = key.lower()
        if (lower in HOP_BY_HOP or lower.startswith("proxy-") or (named and lower in named)
                or lower in IDENTITY_HEADERS):
            continue
        if lower in _FORWARDING:
            if trusted_peer:
                if lower == "x-forwarded-for":
                    prior.append(value)
                elif lower == "x-forwarded-proto":
                    proto = value
                elif lower == "x-forwarded-host":
                    host = value
                elif lower == "forwarded":
                    out.add(key, value)
            continue
        out.add(key, value)
    out.add("X-Forwarded-For", f"{', '.join(prior)}, {peer}" if prior else peer)
    out.add("X-Forwarded-Proto", proto or scheme)
    out.add("X-Forwarded-Host", host if host is not None else headers.get("Host", ""))
    out.add("X-Real-IP", client_ip)
    out.add("X-Request-Id", request_id)
    return out


class TrustedProxies:
    def __init__(self, networks: Sequence[Network]) -> None:
        self.networks = tuple(networks)

    @lru_cache(maxsize=4096)  # noqa: B019 - one instance per config, bounded
    def trusts(self, ip: str) -> bool:
        if not self.networks:
            return False
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self.networks)

    def client_ip(self, peer: str, forwarded_for: Iterable[str]) -> str:
        """The client address: walk X-Forwarded-For right to left through trusted hops.

        The leftmost entry is whatever the client chose to write; only entries
        appended by proxies we trust are believed.
        """
        if not self.trusts(peer):
            return peer
        hops = [h.strip() for v in forwarded_for for h in v.split(",") if h.strip()]
        client = peer
        for hop in reversed(hops):
            hop = _strip_port(hop)
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return client  # garbage: stop at the last address we could vouch for
            client = hop
            if not self.trusts(hop):
                return hop
        return client


def _strip_port(hop: str) -> str:
    if hop.startswith("["):
        end = hop.find("]")
        return hop[1:end] if end > 0 else hop
    if hop.count(":") == 1:
        return hop.split(":", 1)[0]
    return hop
