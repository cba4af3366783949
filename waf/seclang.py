"""SecLang syntax: directives from text and files, and the three parts of a rule.

Pure syntax, no semantics. ``parse_file``/``parse_text`` turn configuration text
into a flat list of ``Directive`` records (``Include`` resolved), and
``parse_variables``/``parse_operator``/``parse_actions`` split a ``SecRule``'s
arguments. Compiling them into rules is the caller's job::

    >>> [d] = parse_text('SecRule ARGS|!ARGS:q "@rx a b" "id:1,msg:\\'x, y\\'"')
    >>> d.name, d.args[1]
    ('SecRule', '@rx a b')
    >>> parse_variables(d.args[0])[1]
    VariableSpec(collection='ARGS', key='q', key_is_regex=False, negated=True, count=False)
    >>> parse_actions(d.args[2])[1]
    ActionSpec(name='msg', value='x, y')

Line handling follows Apache httpd's configuration reader, which is what
ModSecurity v2 (the reference for CRS) uses:

- A line ending in ``\\`` continues on the next line: the backslash is removed
  and the next line is appended as is, leading whitespace included. CRS indents
  its continuation lines, so ``"id:1,\\`` + ``    phase:1`` becomes
  ``"id:1,    phase:1``; action lists ignore the whitespace around items.
- A line whose first non-blank character is ``#`` is a comment, even if it ends
  in ``\\`` (it never swallows the next line). Inside a continued directive,
  ``#`` is ordinary text, as in httpd.

Arguments are split like httpd's ``ap_getword_conf``: on blanks, with ``"..."``
and ``'...'`` quoting. Inside quotes a backslash pairs with a following quote
or backslash, so ``\\"`` is a literal quote and ``\\\\"`` ends the argument.
``\\"`` becomes ``"``; every other backslash is kept as written (``\\\\``
stays two characters), as Coraza and libmodsecurity do, so regexes pass
through unchanged. (httpd itself would collapse ``\\\\`` to ``\\``; CRS never
writes ``\\\\`` and spells a backslash ``\\x5c`` for that reason.)

Errors are ``SecLangError`` with the file and line where the directive starts,
and the whole parse stops at the first one: a rule set is never half-loaded.
The sub-parsers raise a plain ``ValueError``; ``SecLangError.at`` adds the place.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ActionSpec",
    "Directive",
    "OperatorSpec",
    "SecLangError",
    "VariableSpec",
    "parse_actions",
    "parse_file",
    "parse_operator",
    "parse_text",
    "parse_variables",
]


class SecLangError(ValueError):
    """A syntax error at ``file:line``."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line
        self.message = message

    @classmethod
    def at(cls, directive: Directive, message: str) -> SecLangError:
        """An error located at ``directive`` (for callers of the sub-parsers)."""
        return cls(directive.file, directive.line, message)


@dataclass(frozen=True, slots=True)
class Directive:
    name: str  # as written; compare case-insensitively
    args: tuple[str, ...]  # quotes removed, escapes handled
    file: str
    line: int  # where the directive starts


@dataclass(frozen=True, slots=True)
class VariableSpec:
    collection: str  # upper-cased
    key: str | None  # None selects the whole collection
    key_is_regex: bool  # key holds the regex source, without the slashes
    negated: bool  # !COLLECTION:key
    count: bool  # &COLLECTION[:key]


@dataclass(frozen=True, slots=True)
class OperatorSpec:
    name: str  # lower-cased, without '@'
    argument: str
    negated: bool


@dataclass(frozen=True, slots=True)
class ActionSpec:
    name: str  # lower-cased
    value: str | None  # unquoted; None when there is no ':'


# --- quoting, shared by directive arguments, action values and variable keys ---

# "..." / '...' where a backslash pairs with the next character, so the
# closing quote is the first one not preceded by an odd run of backslashes.
_DOUBLE_QUOTED = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"', re.S)
_SINGLE_QUOTED = re.compile(r"'([^'\\]*(?:\\.[^'\\]*)*)'", re.S)
_ESCAPE_PAIR = re.compile(r"\\(.)", re.S)


def _match_quoted(text: str, pos: int) -> re.Match[str] | None:
    """The quoted string starting at ``text[pos]`` (a quote character)."""
    pattern = _DOUBLE_QUOTED if text[pos] == '"' else _SINGLE_QUOTED
    return pattern.match(text, pos)


def _unescape(content: str, quote: str) -> str:
    """``\\<quote>`` -> ``<quote>``; other backslashes stay as written."""
    if "\\" + quote not in content:
        return content
    return _ESCAPE_PAIR.sub(lambda m: m[1] if m[1] == quote else m[0], content)


# --- directives ---

_BLANKS = " \t"
_DIRECTIVE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_BARE_WORD = re.compile(r"[^ \t]+")
_CONTROL_CHAR = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_GLOB_MAGIC = re.compile(r"[*?[]")
_INCLUDES = {"include": False, "includeoptional": True}  # name -> missing is fine

# Argument counts (min, max or None) of directives whose shape is fixed.
_ARITY: dict[str, tuple[int, int | None]] = {
    "secrule": (2, 3),
    "secaction": (1, 1),
    "secmarker": (1, 1),
    "secdefaultaction": (1, 1),
    "seccomponentsignature": (1, 1),
    "secruleupdatetargetbyid": (2, 3),
    "secruleupdatetargetbytag": (2, 3),
    "secruleupdatetargetbymsg": (2, 3),
    "secruleupdateactionbyid": (2, 2),
    "secruleremovebyid": (1, None),
    "secruleremovebytag": (1, None),
    "secruleremovebymsg": (1, None),
}
_ARG_NAMES = {
    "secrule": "variables, operator[, actions]",
    "secruleupdatetargetbyid": "id, targets[, replaced target]",
    "secruleupdatetargetbytag": "tag, targets[, replaced target]",
    "secruleupdatetargetbymsg": "msg, targets[, replaced target]",
    "secruleupdateactionbyid": "id, actions",
}


def _split_words(line: str) -> list[str]:
    """Split a logical line into words like httpd's ``ap_getword_conf``."""
    words: list[str] = []
    pos, end = 0, len(line)
    while True:
        while pos < end and line[pos] in _BLANKS:
            pos += 1
        if pos == end:
            return words
        char = line[pos]
        if char in "\"'":
            m = _match_quoted(line, pos)
            if m is None:
                kind = "double" if char == '"' else "single"
                raise ValueError(f"unterminated {kind} quote starting at column {pos + 1}")
            words.append(_unescape(m[1], char))
            pos = m.end()
            if pos < end and line[pos] not in _BLANKS:
                raise ValueError(
                    f"unexpected {line[pos]!r} right after a closing quote at column {pos + 1}"
                )
        else:
            m = _BARE_WORD.match(line, pos)
            assert m is not None  # line[pos] is not a blank
            words.append(m[0])
            pos = m.end()


def _check_arity(name: str, args: list[str]) -> None:
    arity = _ARITY.get(name.lower())
    if arity is None:
        return
    low, high = arity
    if low <= len(args) and (high is None or len(args) <= high):
        return
    if high is None:
        wanted = f"at least {low}"
    elif low == high:
        wanted = str(low)
    else:
        wanted = f"{low} or {high}" if high == low + 1 else f"{low} to {high}"
    names = _ARG_NAMES.get(name.lower())
    detail = f" ({names})" if names else ""
    hint = " (unbalanced quote or missing line continuation?)" if high and len(args) > high else ""
    plural = "" if wanted == "1" else "s"
    raise ValueError(f"{name} takes {wanted} argument{plural}{detail}, got {len(args)}{hint}")


def _logical_lines(text: str, source: str) -> Iterator[tuple[int, str]]:
    """(first line number, joined text) for each directive, comments skipped."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline does not start another line
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(lines, 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not pending:
            head = line.lstrip(_BLANKS)
            if not head or head[0] == "#":
                continue
            start = number
        bad = _CONTROL_CHAR.search(line)
        if bad:
            raise SecLangError(
                source,
                number,
                f"control character U+{ord(bad[0]):04X} at column {bad.start() + 1}",
            )
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        if line.rstrip(_BLANKS).endswith("\\"):
            raise SecLangError(source, number, "blank after a line-continuation backslash")
        if pending:
            pending.append(line)
            yield start, "".join(pending)
            pending = []
        else:
            yield start, line
    if pending:
        raise SecLangError(
            source, start, "the directive ends in a line continuation at the end of the file"
        )


class _Loader:
    """One parse: the directives so far and the files being read (for loops)."""

    def __init__(self) -> None:
        self.directives: list[Directive] = []
        self.reading: list[Path] = []  # resolved paths, outermost first

    def load_file(self, path: Path, origin: tuple[str, int] | None) -> None:
        source = str(path)
        resolved = path.resolve()
        if resolved in self.reading:
            assert origin is not None  # the outermost file cannot already be open
            chain = " -> ".join(str(p) for p in [*self.reading, resolved])
            raise SecLangError(*origin, f"Include loop: {chain}")
        try:
            data = path.read_bytes()
        except OSError as exc:
            where = origin or (source, 0)
            raise SecLangError(*where, f"cannot read {source}: {exc.strerror or exc}") from exc
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise SecLangError(source, line, f"not UTF-8 (byte {exc.start})") from exc
        self.reading.append(resolved)
        try:
            self.load_text(text, source, path.parent)
        finally:
            self.reading.pop()

    def load_text(self, text: str, source: str, base_dir: Path | None) -> None:
        text = text.removeprefix("\ufeff")  # httpd skips a UTF-8 byte order mark too
        for number, line in _logical_lines(text, source):
            try:
                words = _split_words(line)
                name = words[0]
                if line.lstrip(_BLANKS)[0] in "\"'":
                    raise ValueError("expected a directive name, found a quoted string")
                if not _DIRECTIVE_NAME.match(name):
                    raise ValueError(f"expected a directive name, found {name[:40]!r}")
                args = words[1:]
                if name.lower() in _INCLUDES:
                    if len(args) != 1:
                        raise ValueError(
                            f"{name} takes 1 argument (a path or glob), got {len(args)}"
                        )
                else:
                    _check_arity(name, args)
            except ValueError as exc:
                raise SecLangError(source, number, str(exc)) from exc
            if name.lower() in _INCLUDES:
                optional = _INCLUDES[name.lower()]
                self.include(args[0], optional, base_dir, (source, number))
            else:
                self.directives.append(Directive(name, tuple(args), source, number))

    def include(
        self, target: str, optional: bool, base_dir: Path | None, origin: tuple[str, int]
    ) -> None:
        if not target:
            raise SecLangError(*origin, "Include needs a path")
        relative = not os.path.isabs(target)
        if relative and base_dir is None:
            raise SecLangError(
                *origin, f"relative Include {target!r} in text parsed without base_dir"
            )
        if _GLOB_MAGIC.search(target):
            pattern = os.path.join(glob.escape(str(base_dir)), target) if relative else target
            files = sorted(glob.glob(pattern))
            if not files:
                if optional:
                    return
                raise SecLangError(*origin, f"Include {target!r}: the pattern matched no files")
        else:
            path = os.path.join(str(base_dir), target) if relative else target
            if not os.path.exists(path):
                if optional:
                    return
                raise SecLangError(*origin, f"Include {target!r}: no such file {path}")
            files = [path]
        for name in files:
            path = os.path.normpath(name)
            if os.path.isdir(path):
                raise SecLangError(*origin, f"Include {target!r}: {path} is a directory")
            self.load_file(Path(path), origin)


def parse_text(
    text: str, source: str = "<inline>", base_dir: Path | None = None
) -> list[Directive]:
    """Parse configuration text; relative ``Include`` paths resolve against ``base_dir``."""
    loader = _Loader()
    loader.load_text(text, source, base_dir)
    return loader.directives


def parse_file(path: str | Path) -> list[Directive]:
    """Parse a configuration file; relative ``Include`` paths resolve against its directory."""
    loader = _Loader()
    loader.load_file(Path(path), None)
    return loader.directives


# --- SecRule parts ---

_COLLECTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REGEX_KEY = re.compile(r"/([^/\\]*(?:\\.[^/\\]*)*)/", re.S)
_XPATH_COLLECTIONS = frozenset({"XML"})  # their keys are XPath, e.g. XML://@*


def _skip_blanks(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _BLANKS:
        pos += 1
    return pos


def parse_variables(text: str) -> list[VariableSpec]:
    """``REQUEST_HEADERS|!REQUEST_HEADERS:Cookie|&ARGS|ARGS:/^x-/|XML:/*`` -> specs.

    A key is ``'quoted'`` (``'/regex/'`` inside the quotes is a regex),
    ``/regex/`` (may contain ``|``; ``\\/`` escapes a slash), or plain text up
    to the next ``|``. ``XML`` keys are XPath expressions, taken as plain text.
    """
    specs: list[VariableSpec] = []
    pos, end = _skip_blanks(text, 0), len(text)
    if pos == end:
        raise ValueError("empty variable list")
    while True:
        negated = count = False
        if pos < end and text[pos] in "!&":
            negated, count = text[pos] == "!", text[pos] == "&"
            pos += 1
            if pos < end and text[pos] in "!&":
                raise ValueError(f"'!' and '&' cannot be combined at position {pos} in {text!r}")
        m = _COLLECTION_NAME.match(text, pos)
        if m is None:
            found = repr(text[pos]) if pos < end else "the end"
            raise ValueError(
                f"expected a variable name, found {found} at position {pos} in {text!r}"
            )
        collection = m[0].upper()
        pos = m.end()
        key: str | None = None
        is_regex = False
        if pos < end and text[pos] == ":":
            pos += 1
            if pos < end and text[pos] == "'":
                q = _SINGLE_QUOTED.match(text, pos)
                if q is None:
                    raise ValueError(f"unterminated quote in the key of {collection} in {text!r}")
                key = _unescape(q[1], "'")
                pos = q.end()
                if (
                    collection not in _XPATH_COLLECTIONS
                    and len(key) >= 2
                    and key[0] == key[-1] == "/"
                ):
                    key, is_regex = key[1:-1], True
            elif pos < end and text[pos] == "/" and collection not in _XPATH_COLLECTIONS:
                r = _REGEX_KEY.match(text, pos)
                if r is None:
                    raise ValueError(f"unterminated /regex/ key of {collection} in {text!r}")
                key, is_regex = r[1], True
                pos = r.end()
            else:
                bar = text.find("|", pos)
                stop = end if bar < 0 else bar
                key = text[pos:stop].rstrip(_BLANKS)
                pos = stop
            if not key and not is_regex:
                raise ValueError(f"empty key after '{collection}:' in {text!r}")
        if negated and key is None:
            raise ValueError(f"'!{collection}' needs a key: only a selection can be excluded")
        specs.append(VariableSpec(collection, key, is_regex, negated, count))
        pos = _skip_blanks(text, pos)
        if pos == end:
            return specs
        if text[pos] != "|":
            raise ValueError(f"unexpected {text[pos]!r} at position {pos} in {text!r}")
        pos = _skip_blanks(text, pos + 1)
        if pos == end:
            raise ValueError(f"variable list ends with '|': {text!r}")


_OPERATOR_NAME = re.compile(r"@([A-Za-z][A-Za-z0-9_]*)(?:[ \t]+|\Z)")


def parse_operator(text: str) -> OperatorSpec:
    """``[!]@name argument``; text without ``@`` is an implicit ``@rx``.

    The argument is everything after the blanks that follow the name, trailing
    blanks included (CRS 955 regexes end in a significant space).
    """
    explicit = text.lstrip(_BLANKS)
    negated = explicit.startswith("!")
    if negated:
        explicit = explicit[1:]
    if not explicit.startswith("@"):
        # Implicit @rx: the rest is the regex exactly as written.
        return OperatorSpec("rx", text[1:] if text.startswith("!") else text, negated)
    m = _OPERATOR_NAME.match(explicit)
    if m is None:
        raise ValueError(f"invalid operator name in {text[:60]!r}: expected '@name argument'")
    return OperatorSpec(m[1].lower(), explicit[m.end() :], negated)


_ACTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def parse_actions(text: str) -> list[ActionSpec]:
    """``id:1,t:none,msg:'a, b',pass`` -> specs.

    Items are separated by commas; blanks around items are ignored. A value is
    ``'quoted'`` (commas allowed inside, ``\\'`` is a quote) or plain text up to
    the next comma.
    """
    actions: list[ActionSpec] = []
    pos, end = _skip_blanks(text, 0), len(text)
    if pos == end:
        return actions
    while True:
        m = _ACTION_NAME.match(text, pos)
        if m is None:
            found = repr(text[pos]) if pos < end else "the end"
            raise ValueError(
                f"expected an action name, found {found} at position {pos} in {text!r}"
            )
        name = m[0].lower()
        pos = m.end()
        value: str | None = None
        if pos < end and text[pos] == ":":
            pos = _skip_blanks(text, pos + 1)
            if pos < end and text[pos] == "'":
                q = _SINGLE_QUOTED.match(text, pos)
                if q is None:
                    raise ValueError(f"unterminated quote in the value of {name!r} in {text!r}")
                value = _unescape(q[1], "'")
                pos = q.end()
            else:
                comma = text.find(",", pos)
                stop = end if comma < 0 else comma
                value = text[pos:stop].rstrip(_BLANKS)
                pos = stop
        actions.append(ActionSpec(name, value))
        pos = _skip_blanks(text, pos)
        if pos == end:
            return actions
        if text[pos] != ",":
            raise ValueError(
                f"unexpected {text[pos]!r} after action {name!r} at position {pos} in {text!r}"
            )
        pos = _skip_blanks(text, pos + 1)
        if pos == end:
            raise ValueError(f"action list ends with ',': {text!r}")
