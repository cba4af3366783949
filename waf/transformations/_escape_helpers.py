"""Byte-level helpers shared by the decoding transformations.

ModSecurity decodes escapes one byte at a time in C; these helpers give the
same results for the pieces several decoders share (the IIS full-width ASCII
fold and its lenient ``x2c`` hex-pair arithmetic).
"""

from __future__ import annotations

#: ``BYTE[i]`` is ``bytes((i,))`` without building a new object per escape.
BYTE: tuple[bytes, ...] = tuple(bytes((i,)) for i in range(256))


def fold_fullwidth(high_is_ff: bool, low: int) -> int:
    """The byte ModSecurity keeps for a 16-bit code point it narrows to one byte.

    Only the low byte survives, except that full-width ASCII (U+FF01..U+FF5E)
    is shifted back onto printable ASCII by adding 0x20.
    """
    if high_is_ff and 0 < low < 0x5F:
        return low + 0x20
    return low


def is_ff(pair: bytes) -> bool:
    """True when two hex digits spell ``ff`` in any case."""
    return pair in (b"ff", b"fF", b"Ff", b"FF")


def _nibble(c: int) -> int:
    # ModSecurity's x2c does no validation: 'A' and above are folded to upper
    # case and offset from 'A', everything else is offset from '0', modulo 256.
    return (((c & 0xDF) - ord("A") + 10) if c >= ord("A") else (c - ord("0"))) & 0xFF


NIBBLE: tuple[int, ...] = tuple(_nibble(c) for c in range(256))


def lenient_hex_pairs(data: bytes) -> bytes:
    """Decode pairs of characters with ModSecurity's unchecked ``x2c`` arithmetic.

    Valid hex gives the usual byte; other characters give the same (garbage
    but deterministic) byte ModSecurity produces. ``data`` has even length.
    """
    pairs = zip(data[::2], data[1::2], strict=True)
    return bytes(((NIBBLE[hi] << 4) + NIBBLE[lo]) & 0xFF for hi, lo in pairs)


# The single-letter C escapes (\n, \t, ...) that jsDecode and escapeSeqDecode share.
C_CONTROLS: dict[int, bytes] = {
    ord("a"): b"\x07",
    ord("b"): b"\x08",
    ord("f"): b"\x0c",
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
    ord("v"): b"\x0b",
}

OCTAL_DIGITS = frozenset(b"01234567")
