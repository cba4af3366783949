"""Disruptive actions (what happens when the rule matches) and ``status``."""

from __future__ import annotations

from waf.actions import Action, ActionSpecError, RuleBuilder, register
from waf.macros import Macro


class _Disruptive(Action):
    starter_only = True
    takes_value: bool | None = False

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        builder.rule.disruptive = self.name


@register("deny")
class Deny(_Disruptive):
    pass


@register("drop")
class Drop(_Disruptive):
    pass


@register("block")
class Block(_Disruptive):
    """Whatever SecDefaultAction says for the phase (CRS: pass, then score)."""


@register("pass")
class Pass(_Disruptive):
    pass


@register("allow")
class Allow(_Disruptive):
    takes_value = None

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        scope = (value or "").strip().lower()
        if scope not in ("", "phase", "request"):
            raise ActionSpecError(f"allow takes phase or request, not {value!r}")
        builder.rule.disruptive = "allow"
        builder.rule.allow_scope = scope


@register("redirect")
class Redirect(_Disruptive):
    takes_value = True

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        builder.rule.disruptive = "redirect"
        builder.rule.redirect_url = Macro.compile(value or "")


@register("status")
class Status(Action):
    starter_only = True
    takes_value = True

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        v = (value or "").strip()
        if not v.isdigit() or not 100 <= int(v) <= 599:
            raise ActionSpecError(f"status must be an HTTP status, not {value!r}")
        builder.rule.status = int(v)
