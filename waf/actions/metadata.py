"""Metadata actions: what a rule is, for logs and for selecting rules."""

from __future__ import annotations

from waf.actions import Action, ActionSpecError, RuleBuilder, register
from waf.macros import Macro

SEVERITIES = {"emergency": 0, "alert": 1, "critical": 2, "error": 3, "warning": 4,
              "notice": 5, "info": 6, "debug": 7}


@register("id")
class Id(Action):
    starter_only = True
    takes_value = True

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        assert value is not None
        if not value.strip().isdigit() or int(value) <= 0:
            raise ActionSpecError(f"id must be a positive integer, not {value!r}")
        builder.rule.id = int(value)


@register("phase")
class Phase(Action):
    # The compiler reads the phase before the other actions (defaults depend
    # on it); here it only needs validating.
    starter_only = True
    takes_value = True


@register("msg")
class Msg(Action):
    takes_value = True

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        builder.rule.msg = Macro.compile(value or "")


@register("logdata")
class LogData(Action):
    takes_value = True

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        builder.rule.logdata = Macro.compile(value or "")


@register("severity")
class Severity(Action):
    takes_value = True

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        v = (value or "").strip().lower()
        if v.isdigit() and int(v) <= 7:
            builder.rule.severity = int(v)
        elif v in SEVERITIES:
            builder.rule.severity = SEVERITIES[v]
        else:
            raise ActionSpecError(f"unknown severity {value!r}")


@register("tag")
class Tag(Action):
    takes_value = True

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        builder.rule.tags = (*builder.rule.tags, value or "")


@register("ver")
class Ver(Action):
    takes_value = True

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        builder.rule.ver = value or ""


@register("rev")
class Rev(Action):
    takes_value = True

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        builder.rule.rev = value or ""


@register("maturity")
class Maturity(Action):
    takes_value = True

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        builder.rule.maturity = int(value or 0)


@register("accuracy")
class Accuracy(Action):
    takes_value = True

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        builder.rule.accuracy = int(value or 0)
