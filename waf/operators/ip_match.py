"""``@ipMatch`` / ``@ipMatchFromFile`` (alias ``@ipMatchF``): is the value an
address inside one of the listed IPv4/IPv6 addresses or CIDR networks?

A value that is not an IP address never matches.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from waf.operators import OperatorContext, OperatorTx, register
from waf.operators._arguments import read_data_lines

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse_networks(operator: str, entries: Iterable[str]) -> tuple[_Network, ...]:
    networks: list[_Network] = []
    for entry in entries:
        try:
            # strict=False: "10.0.0.7/8" means 10.0.0.0/8, as ModSecurity masks it.
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"@{operator}: not an IP address or CIDR network: {entry!r}") from None
    return tuple(networks)


class IpMatch:
    __slots__ = ("_v4", "_v6")

    def __init__(self, networks: Iterable[_Network]) -> None:
        self._v4 = tuple(n for n in networks if n.version == 4)
        self._v6 = tuple(n for n in networks if n.version == 6)

    def evaluate(self, tx: OperatorTx, value: bytes) -> bool:
        try:
            address = ipaddress.ip_address(value.decode("ascii"))
        except ValueError:  # includes UnicodeDecodeError
            return False
        if address.version == 4:
            return any(address in network for network in self._v4)
        return any(address in network for network in self._v6)


@register("ipMatch")
def ip_match(argument: str, ctx: OperatorContext) -> IpMatch:
    entries = argument.replace(",", " ").split()
    if not entries:
        raise ValueError("@ipMatch needs at least one address or network")
    return IpMatch(_parse_networks("ipMatch", entries))


@register("ipMatchFromFile")
@register("ipMatchF")
def ip_match_from_file(argument: str, ctx: OperatorContext) -> IpMatch:
    lines = read_data_lines("ipMatchFromFile", argument, ctx)
    entries = [e for line in lines for e in line.decode("latin-1").replace(",", " ").split()]
    return IpMatch(_parse_networks("ipMatchFromFile", entries))
