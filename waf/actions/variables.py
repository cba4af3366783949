"""Run-time actions on transaction variables: setvar, initcol, setenv."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from waf.actions import Action, ActionSpecError, RuleBuilder, register
from waf.macros import Macro


@dataclass(frozen=True, slots=True)
class SetVar:
    collection: str          # "TX", or a collection made by initcol
    key: Macro
    op: str                  # "=", "+", "-", "delete"
    value: Macro


def compile_setvar(text: str) -> SetVar:
    text = text.strip()
    if text.startswith("!"):
        target, op, value = text[1:], "delete", ""
    elif "=" in text:
        target, _, value = text.partition("=")
        op = "="
        if value[:1] in ("+", "-"):
            op, value = value[0], value[1:]
    else:
        target, op, value = text, "=", "1"
    collection, dot, key = target.strip().partition(".")
    if not dot or not key:
        raise ActionSpecError(f"setvar needs COLLECTION.NAME, got {text!r}")
    return SetVar(collection.upper(), Macro.compile(key), op, Macro.compile(value))


@register("setvar")
class SetVarAction(Action):
    takes_value = True

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        builder.run_time(self, compile_setvar(value or ""))

    def evaluate(self, tx: Any, argument: Any) -> None:
        tx.setvar(argument)


@register("initcol")
class InitCol(Action):
    """Persistent collections (ip, session) live only as long as the transaction here."""

    takes_value = True

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        name, eq, _ = (value or "").partition("=")
        if not eq:
            raise ActionSpecError(f"initcol needs NAME=KEY, got {value!r}")
        builder.run_time(self, name.strip().upper())

    def evaluate(self, tx: Any, argument: Any) -> None:
        tx.init_collection(argument)


@register("setenv")
class SetEnv(Action):
    takes_value = True

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        name, _, val = (value or "").partition("=")
        builder.run_time(self, (name.strip().lstrip("!"), Macro.compile(val)))

    def evaluate(self, tx: Any, argument: Any) -> None:
        name, val = argument
        tx.env.set(name, val.expand(tx).encode("utf-8", "surrogateescape"))
