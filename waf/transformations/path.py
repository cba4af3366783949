"""Path normalisation: ``normalizePath`` / ``normalisePath`` and the ``Win`` variants.

This follows ModSecurity's ``normalize_path_inplace`` exactly, including its
corner cases:

* ``//`` collapses, ``.`` segments disappear, ``..`` removes the segment
  before it; an absolute path never climbs above ``/``.
* A relative path keeps the ``..`` segments it cannot resolve
  (``a/../../b`` gives ``../b``) and loses a leading ``./``.
* A trailing slash stays only if the input had one (``/a/b/..`` gives
  ``/a``, and ``/a/..`` gives the empty string).
* A segment that merely *ends* in ``..`` (``x..``) is removed like ``..``
  but without removing the segment before it.

The ``Win`` variants first turn every backslash into a slash.
"""

from __future__ import annotations

import re

from waf.transformations import register

_SLASH = ord("/")
_DOT = ord(".")

# Without these the algorithm copies its input unchanged.
_NEEDS_WORK = re.compile(rb"//|\.(?:/|\Z)")
_SLASH_RUN = re.compile(rb"/+")


def _normalize(value: bytes) -> bytes:
    if not value or _NEEDS_WORK.search(value) is None:
        return value
    # A byte-level state machine; it only runs for values with dot segments
    # or repeated slashes. dst never overtakes src, so it works in place.
    data = bytearray(value)
    end = len(data) - 1
    relative = data[0] != _SLASH
    trailing = data[end] == _SLASH
    src = dst = 0
    hit_root = False
    done = False
    while not done and src <= end and dst <= end:
        if data[src] != _SLASH and src < end and data[src + 1] != _SLASH:
            # Inside a segment bytes are copied as they are: move the whole
            # run up to the segment's last byte at once.
            next_slash = data.find(b"/", src)
            last = end if next_slash == -1 else next_slash - 1
            data[dst : dst + last - src] = data[src:last]
            dst += last - src
            src = last
            continue
        if src == end:
            done = True
            at_segment_end = True
        else:
            at_segment_end = data[src + 1] == _SLASH
        if at_segment_end and data[src] == _DOT:
            if dst > 0 and data[dst - 1] == _DOT:
                # A back-reference ("..", or any segment ending in "..").
                if relative and (hit_root or dst - 2 <= 0):
                    hit_root = True  # unresolvable: copied as it is
                else:
                    dst -= 3
                    if dst > 0:  # back to the slash before the previous segment
                        dst = max(data.rfind(b"/", 1, dst + 1), 0)
                    if dst <= 0:
                        hit_root = True
                        dst = 0
                        if not relative and done:
                            dst = 1  # keep the root slash
                    if done:
                        continue
                    src += 1
            elif dst == 0:
                # A self-reference at the start of a relative path.
                if done:
                    continue
                src += 1
            elif data[dst - 1] == _SLASH:
                # A "/." self-reference.
                if done:
                    continue
                dst -= 1
                src += 1
        elif at_segment_end and dst > 0 and (done or data[src] != _SLASH):
            hit_root = False  # the end of a regular segment, or a trailing slash
        if data[src] == _SLASH:
            run = _SLASH_RUN.match(data, src)
            if run is not None:
                src = run.end() - 1  # the last slash of the run
            if relative and dst == 0:
                src += 1  # a relative path never starts with a slash
                continue
        data[dst] = data[src]
        dst += 1
        src += 1
    if not trailing and dst > 0 and data[dst - 1] == _SLASH:
        dst -= 1
    return bytes(data[:dst])


@register("normalizePath", "normalisePath")
def normalize_path(value: bytes) -> bytes:
    return _normalize(value)


@register("normalizePathWin", "normalisePathWin")
def normalize_path_win(value: bytes) -> bytes:
    if b"\\" not in value:
        return _normalize(value)
    return _normalize(value.replace(b"\\", b"/"))
