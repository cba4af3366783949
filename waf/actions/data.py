"""Actions that shape evaluation or logging: t, capture, multiMatch, log flags."""

from __future__ import annotations

from waf.actions import Action, ActionSpecError, RuleBuilder, register
from waf.transformations import get_transformation


@register("t")
class T(Action):
    takes_value = True

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        name = (value or "").strip()
        if name.lower() == "none":
            builder.rule.transformation_names = []
            return
        try:
            get_transformation(name)
        except KeyError:
            raise ActionSpecError(f"unknown transformation {name!r}") from None
        builder.rule.transformation_names.append(name)


@register("capture")
class Capture(Action):
    takes_value = False

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        builder.rule.capture = True


@register("multimatch")
class MultiMatch(Action):
    takes_value = False

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        builder.rule.multi_match = True


@register("log")
class Log(Action):
    takes_value = False

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        builder.rule.log = True


@register("nolog")
class NoLog(Action):
    takes_value = False

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        builder.rule.log = False
        builder.rule.auditlog = False


@register("auditlog")
class AuditLog(Action):
    takes_value = False

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        builder.rule.auditlog = True


@register("noauditlog")
class NoAuditLog(Action):
    takes_value = False

    def apply(self, builder: RuleBuilder, value: str | None) -> None:
        builder.rule.auditlog = False


# Accepted and without effect here: they drive features this engine does not
# have (persistent collections, environment, debug) or that CRS never uses.
@register("setuid", "setsid", "setrsc", "sanitisearg", "sanitisematched",
          "sanitisematchedbytes", "sanitiserequestheader", "sanitiseresponseheader",
          "append", "prepend", "deprecatevar", "xmlns", "exec", "proxy", "pause")
class Inert(Action):
    pass


@register("expirevar")
class ExpireVar(Action):
    takes_value = True
