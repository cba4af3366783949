"""``@pm`` / ``@pmFromFile``: case-insensitive phrase matching (Aho-Corasick).

Phrases and values are compared as bytes with ASCII-only case folding, as
ModSecurity's matcher does. The automaton runs over Latin-1 text (one byte is
one character), because pyahocorasick's build here keys on ``str``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import ahocorasick  # type: ignore[import-not-found]

from waf.operators import OperatorContext, OperatorTx, register
from waf.operators._arguments import read_data_lines, text_to_bytes


class PhraseMatch:
    __slots__ = ("_automaton", "phrases")

    def __init__(self, phrases: Iterable[bytes]) -> None:
        # Each lower-cased phrase maps to the phrase as first written (TX:0).
        written: dict[bytes, bytes] = {}
        for phrase in phrases:
            written.setdefault(phrase.lower(), phrase)
        # The lower-cased phrases the automaton matches, for prefilters.
        self.phrases: tuple[bytes, ...] = tuple(written)
        self._automaton: Any = None
        if written:
            automaton = ahocorasick.Automaton()
            for lowered, original in written.items():
                automaton.add_word(lowered.decode("latin-1"), original)
            automaton.make_automaton()
            self._automaton = automaton

    def evaluate(self, tx: OperatorTx, value: bytes) -> bool:
        if self._automaton is None:
            return False
        for _end, phrase in self._automaton.iter(value.lower().decode("latin-1")):
            if tx.capturing:
                tx.set_captures([phrase])
            return True
        return False


@register("pm")
def pm(argument: str, ctx: OperatorContext) -> PhraseMatch:
    phrases = text_to_bytes(argument).split()
    if not phrases:
        raise ValueError("@pm needs at least one phrase")
    return PhraseMatch(phrases)


@register("pmFromFile")
@register("pmf")
def pm_from_file(argument: str, ctx: OperatorContext) -> PhraseMatch:
    # A data file with no phrases is valid: the operator then never matches.
    return PhraseMatch(read_data_lines("pmFromFile", argument, ctx))
