"""Action registry.

An action is a class registered with ``@register("name", ...)``. Its
``init(builder, value)`` runs when the rule loads and records what the action
means on the rule (metadata, flow, the disruptive action, transformations).
Actions that do something at run time (``setvar``, ``ctl``, ...) also add
themselves to the rule's run-time list with a compiled argument; the
transaction then calls ``evaluate(tx, argument)`` on each match.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from waf.registry import Registry

if TYPE_CHECKING:
    from waf.rules import Rule


class ActionSpecError(ValueError):
    pass


class RuleBuilder:
    """The rule being built, and what its actions said so far."""

    def __init__(self, rule: Rule, starter: bool, update: bool = False) -> None:
        self.rule = rule
        self.starter = starter
        self.update = update
        self.chain = False

    def run_time(self, action: Action, argument: Any) -> None:
        self.rule.actions.append((action, argument))


class Action:
    """Base: an action with no value and no run-time effect."""

    name = ""
    # Only the first rule of a chain may carry these.
    starter_only = False
    takes_value: bool | None = None  # None: optional

    def init(self, builder: RuleBuilder, value: str | None) -> None:
        if self.starter_only and not builder.starter:
            raise ActionSpecError(f"{self.name} is only allowed on the first rule of a chain")
        if self.takes_value is True and not value:
            raise ActionSpecError(f"{self.name} needs a value")
        if self.takes_value is False and value:
            raise ActionSpecError(f"{self.name} takes no value")
        self.apply(builder, value)

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        """Parse-time effect on the rule."""

    def evaluate(self, tx: Any, argument: Any) -> None:
        """Run-time effect (for actions that registered themselves as run-time)."""


_REGISTRY: Registry[type[Action]] = Registry(__name__, __path__)


def register(*names: str) -> Callable[[type[Action]], type[Action]]:
    def deco(cls: type[Action]) -> type[Action]:
        if not cls.name:
            cls.name = names[0]
        return _REGISTRY.register(*names)(cls)

    return deco


def get_action(name: str) -> Action:
    try:
        cls = _REGISTRY.get(name)
    except KeyError:
        raise ActionSpecError(f"unknown action {name!r}") from None
    return cls()


def action_names() -> list[str]:
    return _REGISTRY.names()
