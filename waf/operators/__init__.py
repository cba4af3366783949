"""Operator registry: ``@name argument`` compiled once, evaluated per value.

An operator module registers a factory with ``@register("name")``. The
factory receives the (unexpanded) argument text and an ``OperatorContext``,
does all compiling up front (regexes, automata, data files, macros), and
returns an object whose ``evaluate(tx, value)`` answers for one value. Values
are bytes: request data is inspected byte for byte (Latin-1 semantics), as
ModSecurity does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from waf.macros import MacroSource
from waf.registry import Registry


class OperatorTx(MacroSource, Protocol):
    """What an operator may use of the transaction evaluating it."""

    # True when the rule being evaluated has the `capture` action.
    capturing: bool

    def set_captures(self, groups: Sequence[bytes]) -> None:
        """Store TX:0 (whole match) .. TX:9 from a successful match."""


class Operator(Protocol):
    def evaluate(self, tx: OperatorTx, value: bytes) -> bool: ...


@dataclass(frozen=True)
class OperatorContext:
    # Directory data files (@pmFromFile, @ipMatchFromFile) are relative to:
    # the directory of the rule file that names them.
    base_dir: Path = field(default_factory=Path.cwd)


OperatorFactory = Callable[[str, OperatorContext], Operator]

_REGISTRY: Registry[OperatorFactory] = Registry(__name__, __path__)


def register(name: str) -> Callable[[OperatorFactory], OperatorFactory]:
    return _REGISTRY.register(name)


def get_operator(name: str, argument: str, ctx: OperatorContext | None = None) -> Operator:
    """Compile ``@name argument``.

    KeyError for an unknown operator, ValueError for a bad argument.
    """
    return _REGISTRY.get(name)(argument, ctx or OperatorContext())


def operator_names() -> list[str]:
    return _REGISTRY.names()
