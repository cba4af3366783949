"""``@unconditionalMatch`` (always true) and ``@noMatch`` (always false)."""

from __future__ import annotations

from waf.operators import OperatorContext, OperatorTx, register


class ConstantMatch:
    __slots__ = ("_result",)

    def __init__(self, result: bool) -> None:
        self._result = result

    def evaluate(self, tx: OperatorTx, value: bytes) -> bool:
        return self._result


@register("unconditionalMatch")
def unconditional_match(argument: str, ctx: OperatorContext) -> ConstantMatch:
    return ConstantMatch(True)


@register("noMatch")
def no_match(argument: str, ctx: OperatorContext) -> ConstantMatch:
    return ConstantMatch(False)
