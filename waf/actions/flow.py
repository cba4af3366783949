"""Flow actions: chain, skip, skipAfter."""

from __future__ import annotations

from waf.actions import Action, ActionSpecError, RuleBuilder, register


@register("chain")
class Chain(Action):
    takes_value = False

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        builder.chain = True


@register("skip")
class Skip(Action):
    starter_only = True
    takes_value = True

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        v = (value or "").strip()
        if not v.isdigit() or int(v) < 1:
            raise ActionSpecError(f"skip takes a positive number, not {value!r}")
        builder.rule.skip = int(v)


@register("skipafter")
class SkipAfter(Action):
    starter_only = True
    takes_value = True

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        builder.rule.skip_after = (value or "").strip().strip("'\"")
