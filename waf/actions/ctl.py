"""``ctl``: change the engine's behaviour for the rest of one transaction."""

from __future__ import annotations

from typing import Any

from waf.actions import Action, ActionSpecError, RuleBuilder, register

OPTIONS = frozenset({
    "ruleengine", "requestbodyaccess", "requestbodyprocessor", "forcerequestbodyvariable",
    "responsebodyaccess", "requestbodylimit", "responsebodylimit", "ruleremovebyid",
    "ruleremovebytag", "ruleremovebymsg", "ruleremovetargetbyid", "ruleremovetargetbytag",
    "ruleremovetargetbymsg", "auditengine", "auditlogparts", "debugloglevel",
    "hashengine", "hashenforcement",
})


@register("ctl")
class Ctl(Action):
    takes_value = True

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        option, eq, arg = (value or "").partition("=")
        option = option.strip().lower()
        if not eq or option not in OPTIONS:
            raise ActionSpecError(f"unknown ctl {value!r}")
        builder.run_time(self, (option, arg.strip()))

    def evaluate(self, tx: Any, argument: Any) -> None:
        tx.ctl(*argument)
