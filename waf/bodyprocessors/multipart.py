"""``multipart/form-data`` bodies, parsed the way ModSecurity parses them.

This follows ModSecurity's multipart parser (``msc_multipart.c`` in v2,
``request_body_processor/multipart.cc`` in v3) closely, because the
``MULTIPART_*`` flags are defined by what that parser notices:

* the body is read line by line through a 4096-byte buffer (a longer line is
  cut into buffer-sized chunks, and only a chunk that starts a line can be a
  boundary);
* a boundary line is ``--boundary`` or ``--boundary--`` followed by CRLF or
  LF; the line ending before it belongs to the boundary, not to the data;
* part headers are ``Name: value`` lines up to an empty line, folded lines
  are joined with a space, and ``Content-Disposition`` must be ``form-data``
  with a ``name`` (and maybe ``filename``) parameter;
* ``MULTIPART_STRICT_ERROR`` is the OR of every other flag except
  ``MULTIPART_UNMATCHED_BOUNDARY`` and ``MULTIPART_CRLF_LF_LINES``, plus
  "the parser hit an error".

LF-only line endings are accepted (the body parses and its arguments are
returned) but raise ``MULTIPART_LF_LINE`` and so ``MULTIPART_STRICT_ERROR``,
as in ModSecurity. ``MULTIPART_UNMATCHED_BOUNDARY`` is 1 exactly when
ModSecurity v3's is 1 (what its recommended rule 200004 tests with ``@eq
1``): a line looked like a boundary but was not ours, and no real boundary
came after it. (v3 then stores 2, which every body with two boundaries ends
with; that value is reported as 0.)

Flags, arguments, files and part headers were checked against
libmodsecurity 3.0.15 (see the differential tests). Where it differs, on
purpose: a malformed part header stops parsing with an error (v2; v3 logs
it and carries on, and silently drops a duplicate header); a form field
keeps its inner line breaks (v2; v3 drops them); an empty boundary in the
Content-Type is an error (v3 accepts it and skips the body); error messages
name the first problem (v3 often overwrites it with "Final boundary
missing"); the file limit counts every file part (v3 only when it extracts
files); and, for bounded work, more than ``max_parts`` parts or 100 header
lines in a part is an error. Parts completed before an error are still
returned, so rules can inspect them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from waf.bodyprocessors.result import BodyResult, FilePart

_PREFIX = "Multipart parsing error: "
# ModSecurity's MULTIPART_BUF_SIZE: line buffer size, part header size limit.
_BUF_SIZE = 4096
_MAX_CONTENT_TYPE = 1024

# C isspace() in the "C" locale.
_C_SPACE = b" \t\n\v\f\r"
_CD_SPACE = re.compile(rb"[ \t]*")
_CD_PARAM_NAME = re.compile(rb"[^=\t ]*")
# RFC 2616 token characters (ModSecurity's is_token_char).
_CD_TOKEN = re.compile(rb"[!#$%&'*+\-.0-9A-Z^_`a-z|~]*")
_CD_QUOTED_RUN = {0x22: re.compile(rb'[^"\\]*'), 0x27: re.compile(rb"[^'\\]*")}
# RFC 5987 ext-value pieces, for filename*=charset'lang'value.
_CD_CHARSET = re.compile(rb"[0-9A-Za-z!#$%&+\-^_`{}~]*")
_CD_EXT_VALUE = re.compile(rb"(?:%[0-9A-Fa-f]{2}|[0-9A-Za-z!#$&+\-.^_`~])*")
# RFC 2046 boundary characters (a space is allowed, but not last).
_BOUNDARY_CHARS = re.compile(rb"[0-9A-Za-z'()+_,\-./:=? ]*")
_BOUNDARY_WORD = re.compile(rb"boundary")
_HEADER_NAME_INVALID = re.compile(rb"[^\x21-\x7e]")
# A line that looks like a boundary to ModSecurity: "--" and two more bytes.
_DASH_LINE_AT = re.compile(rb"--[^\0\n][^\0]")
_DASH_LINE = re.compile(rb"\n--[^\0\n][^\0]")
_NEVER = re.compile(rb"(?!)")
# Not ModSecurity's: real parts have a handful of header lines.
_MAX_HEADER_LINES = 100

FLAG_NAMES = (
    "MULTIPART_BOUNDARY_QUOTED",
    "MULTIPART_BOUNDARY_WHITESPACE",
    "MULTIPART_DATA_BEFORE",
    "MULTIPART_DATA_AFTER",
    "MULTIPART_HEADER_FOLDING",
    "MULTIPART_LF_LINE",
    "MULTIPART_MISSING_SEMICOLON",
    "MULTIPART_INVALID_QUOTING",
    "MULTIPART_INVALID_PART",
    "MULTIPART_INVALID_HEADER_FOLDING",
    "MULTIPART_FILE_LIMIT_EXCEEDED",
)
"""The flags whose OR (with a parser error) is ``MULTIPART_STRICT_ERROR``."""


def parse_multipart(
    body: bytes, content_type: str, *, max_files: int = 100, max_parts: int = 1000,
    partial: bool = False,
) -> BodyResult:
    """Parse a ``multipart/form-data`` body given the request's Content-Type value.

    Form fields become ``args``, parts with a non-empty ``filename`` become
    ``files``. More than ``max_files`` file parts raises
    ``MULTIPART_FILE_LIMIT_EXCEEDED`` (ModSecurity's SecUploadFileLimit);
    more than ``max_parts`` parts stops parsing with an error. A ``partial``
    body (the first bytes of a longer one) needs no final boundary: the part
    it was cut in ends where the body does.
    """
    parser = _MultipartParser(body, max_files=max_files, max_parts=max_parts, partial=partial)
    parser.run(content_type.encode("latin-1", "replace"))
    return parser.result()


class _Stop(Exception):
    """Parsing ends here (the error, if any, is already recorded)."""


@dataclass
class _Part:
    # Headers by lower-cased name -> (name as sent, value), in arrival order.
    headers: dict[bytes, tuple[bytes, bytes]] = field(default_factory=dict)
    last_header: bytes | None = None  # lower-cased key of the header being built
    last_header_line: bytes = b""
    header_lines: list[bytes] = field(default_factory=list)
    in_data: bool = False  # past the empty line that ends the headers
    header_line_count: int = 0
    name: bytes = b""
    filename: bytes = b""
    is_file: bool = False
    counted_as_file: bool = False
    data_start: int = -1
    data_end: int = -1


class _MultipartParser:
    def __init__(self, body: bytes, *, max_files: int, max_parts: int,
                 partial: bool = False) -> None:
        self.body = body
        self.partial = partial
        # Where the unterminated last line starts (it is never fed to chunk()).
        self.tail_start = len(body)
        self.max_files = max_files
        self.max_parts = max_parts
        self.boundary = b""
        self.needle = b""  # "--" + boundary
        self.near_miss_at = self.near_miss = _NEVER
        self.flags = dict.fromkeys(FLAG_NAMES, 0)
        self.unmatched_boundary = 0
        self.crlf_line = False
        self.flag_error = False
        self.error: str | None = None
        self.part: _Part | None = None
        self.parts_started = 0
        self.files_seen = 0
        self.boundary_count = 0
        self.complete = False
        # ModSecurity's m_mpp_substate_part_data_read: has the current part
        # received data since its headers ended?
        self.data_read = False
        # Line-ending of the last line processed: 2 = LF only, 3 = CRLF.
        self.crlf_buf_end = 0
        # Does the next chunk start a line? (m_buf_contains_line)
        self.contains_line = True
        self.out = BodyResult()

    # -- outcome -------------------------------------------------------------

    def fail(self, message: str, *, parser_error: bool = True) -> _Stop:
        self.error = _PREFIX + message
        if parser_error:
            self.flag_error = True
        return _Stop()

    def result(self) -> BodyResult:
        out = self.out
        out.error = self.error
        flags = dict(self.flags)
        flags["MULTIPART_UNMATCHED_BOUNDARY"] = int(self.unmatched_boundary == 1)
        flags["MULTIPART_CRLF_LF_LINES"] = int(self.crlf_line and bool(flags["MULTIPART_LF_LINE"]))
        flags["MULTIPART_STRICT_ERROR"] = int(
            self.flag_error or any(self.flags[name] for name in FLAG_NAMES)
        )
        out.flags = flags
        return out

    # -- driver --------------------------------------------------------------

    def run(self, content_type: bytes) -> None:
        try:
            self.init(content_type)
        except _Stop:
            return
        if not self.body:
            return
        try:
            self.process()
            self.finish()
        except _Stop:
            pass

    # -- Content-Type --------------------------------------------------------

    def init(self, header: bytes) -> None:
        if not header:
            raise self.fail("Multipart: Content-Type header not available.")
        if len(header) > _MAX_CONTENT_TYPE:
            raise self.fail("Multipart: Invalid boundary in C-T (length).")
        header = header.split(b"\0", 1)[0]
        if header[:19].lower() != b"multipart/form-data":
            raise self.fail("Multipart: Invalid MIME type.")
        if _count_boundary_params(header) > 1:
            raise self.fail("Multipart: Multiple boundary parameters in C-T.")
        at = header.find(b"boundary")
        if at < 0:
            if _count_boundary_params(header) > 0:
                raise self.fail("Multipart: Invalid boundary in C-T (case sensitivity).")
            raise self.fail("Multipart: Boundary not found in C-T.")
        seen_semicolon = False
        for c in header[19:at]:
            if c in _C_SPACE:
                continue
            if c == 0x3B and not seen_semicolon:  # one ';' is expected
                seen_semicolon = True
                continue
            raise self.fail("Multipart: Invalid boundary in C-T (malformed).")
        if not seen_semicolon:
            self.flags["MULTIPART_MISSING_SEMICOLON"] = 1
        eq = header.find(b"=", at + 8)
        if eq < 0:
            raise self.fail("Multipart: Invalid boundary in C-T (malformed).")
        for c in header[at + 8 : eq]:
            if c not in _C_SPACE:
                raise self.fail("Multipart: Invalid boundary in C-T (parameter name).")
            self.flags["MULTIPART_BOUNDARY_WHITESPACE"] = 1
        value = header[eq + 1 :]
        if value[:1] and value[0] in _C_SPACE:
            self.flags["MULTIPART_BOUNDARY_WHITESPACE"] = 1
        if len(value) >= 2 and value[0] == 0x22 and value[-1] == 0x22:
            boundary = value[1:-1]
            self.flags["MULTIPART_BOUNDARY_QUOTED"] = 1
        elif value[:1] == b'"' or (len(value) >= 2 and value[-1] == 0x22):
            raise self.fail("Multipart: Invalid boundary in C-T (quote).")
        else:
            boundary = value
        if boundary and _count_boundary_params(boundary) != 0:
            raise self.fail("Multipart: Invalid boundary in C-T (content).")
        if not _boundary_valid(boundary) and b";" in boundary:
            # Tolerated (v3): a parameter such as "; charset=UTF-8" after the boundary.
            boundary = boundary.split(b";", 1)[0]
        if not _boundary_valid(boundary):
            raise self.fail("Multipart: Invalid boundary in C-T (characters).")
        if not boundary:
            raise self.fail("Multipart: Invalid boundary in C-T (empty).")
        self.boundary = boundary
        self.needle = b"--" + boundary
        # "-- boundary" lines (and '--"boundary' ones when the boundary was
        # quoted) are errors, not data.
        prefix = (
            rb'(?:[ \t\v\f\r]+|")' if self.flags["MULTIPART_BOUNDARY_QUOTED"] else rb"[ \t\v\f\r]+"
        )
        near_miss = b"--" + prefix + re.escape(boundary)
        self.near_miss_at = re.compile(near_miss)
        self.near_miss = re.compile(rb"\n" + near_miss)

    # -- body ----------------------------------------------------------------

    def process(self) -> None:
        body = self.body
        end = len(body)
        boundary_line = b"\n" + self.needle
        pos = 0
        while pos < end and not self.complete:
            if self.part is not None and not self.part.in_data:
                pos = self.process_line(pos)
                continue
            # Data (or preamble). Only a line starting with our boundary, or
            # with a near miss that is an error, needs the line-by-line
            # parser; the lines before it are data, handled in bulk.
            if body.startswith(self.needle, pos):
                stop = pos
            else:
                at = body.find(boundary_line, pos)
                stop = end if at < 0 else at + 1
            if self.near_miss_at.match(body, pos):
                stop = pos
            else:
                near_miss = self.near_miss.search(body, pos, stop)
                if near_miss:
                    stop = near_miss.start() + 1
            whole_lines_end = stop if stop < end else body.rfind(b"\n", pos, end) + 1
            if whole_lines_end > pos:
                self.data_lines(pos, whole_lines_end)
                pos = whole_lines_end
            if pos < end:
                pos = self.process_line(pos)
        if self.complete and pos < end:
            self.flags["MULTIPART_DATA_AFTER"] = 1

    def data_lines(self, start: int, stop: int) -> None:
        """Whole lines [start, stop) that cannot be boundaries: data or preamble."""
        body = self.body
        # ModSecurity flags MULTIPART_UNMATCHED_BOUNDARY for a line that looks
        # like a boundary ("--" and at least two more characters) but is not
        # ours, and for a line containing "--boundary" in its first chunk.
        if _DASH_LINE_AT.match(body, start) or _DASH_LINE.search(body, start, stop):
            self.unmatched_boundary = 1
        else:
            needle = self.needle
            at = body.find(needle, start, stop)
            while at >= 0:
                line_start = body.rfind(b"\n", start, at) + 1 or start
                if at + len(needle) - line_start <= self.first_chunk_len(line_start):
                    self.unmatched_boundary = 1
                    break
                next_line = body.find(b"\n", at, stop) + 1
                if next_line <= 0:
                    break
                at = body.find(needle, next_line, stop)
        if self.part is None:
            self.flags["MULTIPART_DATA_BEFORE"] = 1
        else:
            self.part_data(start, stop)
        self.crlf_buf_end = 3 if stop - start >= 2 and body[stop - 2] == 0x0D else 2
        self.contains_line = True

    def first_chunk_len(self, line_start: int) -> int:
        body = self.body
        nl = body.find(b"\n", line_start)
        line_end = len(body) if nl < 0 else nl + 1
        if line_end - line_start <= _BUF_SIZE:
            return line_end - line_start
        # A '\r' never goes in the buffer's last byte: it starts the next chunk.
        return _BUF_SIZE - 1 if body[line_start + _BUF_SIZE - 1] == 0x0D else _BUF_SIZE

    def process_line(self, start: int) -> int:
        """Feed one line (as buffer-sized chunks) through the parser; return where it ends."""
        body = self.body
        nl = body.find(b"\n", start)
        has_newline = nl >= 0
        line_end = nl + 1 if has_newline else len(body)
        pos = start
        while pos < line_end:
            remaining = line_end - pos
            if has_newline and remaining <= _BUF_SIZE:
                self.chunk(pos, line_end, ends_line=True, forced=remaining == _BUF_SIZE)
                return line_end
            if remaining < _BUF_SIZE:
                # Left in the buffer when the body ends: only finish() looks at it.
                self.tail_start = pos
                return len(body)
            cut = pos + _BUF_SIZE
            if body[cut - 1] == 0x0D:
                cut -= 1
            self.chunk(pos, cut, ends_line=False, forced=True)
            if self.complete:
                return cut
            pos = cut
        return line_end

    def chunk(self, start: int, stop: int, *, ends_line: bool, forced: bool) -> None:
        """One buffer's worth: ModSecurity's per-buffer step in Multipart::process."""
        data = self.body[start:stop]
        # The C code looks at the buffer as a C string.
        text = data.split(b"\0", 1)[0] if b"\0" in data else data
        boundary = self.boundary
        is_boundary = False
        if self.contains_line and len(text) > 3 and text.startswith(b"--"):
            if text.startswith(boundary, 2):
                if self.crlf_buf_end == 2:
                    self.flags["MULTIPART_LF_LINE"] = 1
                if not self.data_read and self.boundary_count > 0:
                    # Our boundary where part data should begin.
                    self.flags["MULTIPART_INVALID_PART"] = 1
                else:
                    if self.boundary_count > 0:
                        self.unmatched_boundary = 2
                    rest = text[2 + len(boundary) :]
                    is_final = rest.startswith(b"--")
                    if is_final:
                        rest = rest[2:]
                    if rest not in (b"\r\n", b"\n"):
                        raise self.fail(f"Multipart: Invalid boundary: {_show(data)}")
                    if rest == b"\n":
                        self.flags["MULTIPART_LF_LINE"] = 1
                    else:
                        self.crlf_line = True
                    self.end_part(last=is_final)
                    if is_final:
                        self.complete = True
                    is_boundary = True
                    self.boundary_count += 1
            else:
                if (
                    self.flags["MULTIPART_BOUNDARY_QUOTED"]
                    and text[2:3] == b'"'
                    and text.startswith(boundary, 3)
                ):
                    raise self.fail("Multipart: Invalid boundary (quotes).")
                stripped = text[2:].lstrip(_C_SPACE)
                if len(stripped) < len(text) - 2 and stripped.startswith(boundary):
                    raise self.fail("Multipart: Invalid boundary (whitespace).")
                self.unmatched_boundary = 1
        elif self.contains_line and self.needle in data:
            self.unmatched_boundary = 1

        if not is_boundary:
            part = self.part
            if part is None:
                self.flags["MULTIPART_DATA_BEFORE"] = 1
            elif not part.in_data:
                if forced:
                    raise self.fail(f"Multipart: Part header line over {_BUF_SIZE} bytes long")
                self.part_header(part, data)
            else:
                self.part_data(start, stop)

        if ends_line:
            self.crlf_buf_end = 3 if data.endswith(b"\r\n") else 2
        self.contains_line = ends_line

    # -- parts ---------------------------------------------------------------

    def part_data(self, start: int, stop: int) -> None:
        part = self.part
        assert part is not None
        self.data_read = True
        if part.data_start < 0:
            part.data_start = start
        part.data_end = stop
        if part.is_file and not part.counted_as_file:
            part.counted_as_file = True
            if (
                self.files_seen >= self.max_files
                and not self.flags["MULTIPART_FILE_LIMIT_EXCEEDED"]
            ):
                self.flags["MULTIPART_FILE_LIMIT_EXCEEDED"] = 1
                self.error = (
                    f"{_PREFIX}Multipart: Upload file limit exceeded {self.max_files}. "
                    "Use SecUploadFileLimit to change the limit."
                )
            self.files_seen += 1

    def end_part(self, *, last: bool) -> None:
        """A boundary: finish the current part, start the next one unless ``last``."""
        part = self.part
        out = self.out
        if part is not None:
            for line in part.header_lines:
                out.part_headers.append((part.name, line))
            if part.name:
                value = b""
                if part.data_start >= 0:
                    value = self.body[part.data_start : part.data_end]
                    # The line ending before a boundary belongs to the boundary.
                    if value.endswith(b"\r\n"):
                        value = value[:-2]
                    elif value.endswith(b"\n"):
                        value = value[:-1]
                if part.is_file:
                    content_type = part.headers.get(b"content-type")
                    out.files.append(
                        FilePart(
                            name=part.name,
                            filename=part.filename,
                            size=len(value),
                            content_type=content_type[1] if content_type else None,
                            headers=list(part.headers.values()),
                        )
                    )
                else:
                    out.args.append((part.name, value))
            else:
                self.flags["MULTIPART_INVALID_PART"] = 1
            self.part = None
        if not last:
            if self.parts_started >= self.max_parts:
                raise self.fail(f"Multipart: Too many parts (limit {self.max_parts}).")
            self.parts_started += 1
            self.part = _Part()
            self.data_read = False

    def part_header(self, part: _Part, line: bytes) -> None:
        part.header_line_count += 1
        if part.header_line_count > _MAX_HEADER_LINES:
            raise self.fail(f"Multipart: Too many part header lines (limit {_MAX_HEADER_LINES}).")
        if b"\0" in line:
            raise self.fail("Multipart: Nul byte in part headers.")
        if len(line) > 1 and line[-2] == 0x0D:
            self.crlf_line = True
            content = line[:-2]
        else:
            self.flags["MULTIPART_LF_LINE"] = 1
            content = line[:-1]
        if line in (b"\r\n", b"\n"):
            self.headers_done(part)
            return
        if line[0] in _C_SPACE:
            self.folded_header(part, line)
            return
        if part.last_header_line:
            part.header_lines.append(part.last_header_line)
            part.last_header_line = b""
        colon = line.find(b":")
        if colon < 0:
            raise self.fail(f"Multipart: Invalid part header (colon missing): {_show(line)}")
        name = line[:colon]
        if not name:
            raise self.fail("Multipart: Invalid part header (header name missing).")
        if _HEADER_NAME_INVALID.search(name):
            raise self.fail("Multipart: Invalid part header (contains invalid character).")
        key = name.lower()
        if key in part.headers:
            raise self.fail(f"Multipart: Duplicate part header: {_show(name)}.")
        value = _chomp(line[colon + 1 :].lstrip(b" \t"))
        part.headers[key] = (name, value)
        part.last_header = key
        part.last_header_line = content

    def folded_header(self, part: _Part, line: bytes) -> None:
        self.flags["MULTIPART_HEADER_FOLDING"] = 1
        if line[0] not in b" \t":
            self.flags["MULTIPART_INVALID_HEADER_FOLDING"] = 1
        if part.last_header is None:
            raise self.fail("Multipart: Invalid part header (folding error).")
        continuation = line.lstrip(_C_SPACE)
        if line[: len(line) - len(continuation)].strip(b" \t"):
            self.flags["MULTIPART_INVALID_HEADER_FOLDING"] = 1
        name, value = part.headers[part.last_header]
        value = value + b" " + _chomp(continuation)
        part.headers[part.last_header] = (name, value)
        if len(value) > _BUF_SIZE:
            raise self.fail("Multipart: Part header too long.")
        part.last_header_line = name + b": " + value

    def headers_done(self, part: _Part) -> None:
        if part.last_header_line:
            part.header_lines.append(part.last_header_line)
            part.last_header_line = b""
        disposition = part.headers.get(b"content-disposition")
        if disposition is None:
            raise self.fail("Multipart: Part missing Content-Disposition header.")
        value = disposition[1]
        rc = self.parse_content_disposition(part, value)
        if rc < 0:
            raise self.fail(f"Multipart: Invalid Content-Disposition header ({rc}): {_show(value)}")
        if not part.name:
            raise self.fail("Multipart: Content-Disposition header missing name field.")
        if part.filename:
            # A crude parser that misses filename= would see a field, not a file.
            if b"filename=" not in value:
                raise self.fail("Multipart: Invalid Content-Disposition header (filename).")
            part.is_file = True
        part.in_data = True
        part.last_header = None
        self.data_read = False

    def parse_content_disposition(self, part: _Part, v: bytes) -> int:
        """ModSecurity's parse_content_disposition; negative codes are its error codes."""
        if not v.startswith(b"form-data"):
            return -1
        end = len(v)
        p = _skip(v, 9)
        if p == end:
            return 1
        if v[p] != 0x3B:
            return -2
        p += 1
        filename_star = b""
        while p < end:
            p = _skip(v, p)
            if p == end:
                return -3
            m = _CD_PARAM_NAME.match(v, p)
            assert m is not None
            name, p = m.group(), m.end()
            if p == end:
                return -4
            p = _skip(v, p)
            if p == end:
                return -5
            if v[p] != 0x3D:
                return -13
            p = _skip(v, p + 1)
            if p == end:
                return -6
            quote = 0
            if name == b"filename*":
                m = _CD_CHARSET.match(v, p)
                assert m is not None
                if m.end() == p or m.end() == end or v[m.end()] != 0x27:
                    return -16
                language_end = v.find(b"'", m.end() + 1)
                if language_end < 0:
                    return -17
                p = language_end + 1
                m = _CD_EXT_VALUE.match(v, p)
                assert m is not None
                if m.end() < end and v[m.end()] != 0x3B:
                    return -18 if v[m.end()] == 0x25 else -19
                value, p = m.group(), m.end()
            elif v[p] in (0x22, 0x27):
                quote = v[p]
                if quote == 0x27:
                    self.flags["MULTIPART_INVALID_QUOTING"] = 1
                p += 1
                if p == end:
                    return -7
                run = _CD_QUOTED_RUN[quote]
                pieces: list[bytes] = []
                while True:
                    m = run.match(v, p)
                    assert m is not None
                    pieces.append(m.group())
                    p = m.end()
                    if p == end:
                        return -7  # no closing quote
                    if v[p] == quote:
                        p += 1
                        break
                    # A backslash escapes only the quote or a backslash.
                    if p + 1 == end:
                        return -8
                    if v[p + 1] in (quote, 0x5C):
                        pieces.append(v[p + 1 : p + 2])
                        p += 2
                    else:
                        pieces.append(b"\\")
                        p += 1
                value = b"".join(pieces)
            else:
                m = _CD_TOKEN.match(v, p)
                assert m is not None
                value, p = m.group(), m.end()

            if name == b"name":
                self.check_quotes(value, quote)
                self.out.multipart_name.append(value)
                if part.name:
                    return -14
                part.name = value
            elif name == b"filename":
                self.check_quotes(value, quote)
                self.out.multipart_filename.append(value)
                if part.filename:
                    return -15
                part.filename = value
            elif name == b"filename*":
                if filename_star:
                    return -20
                filename_star = value
            else:
                return -11

            if p < end:
                p = _skip(v, p)
                if p < end:
                    if v[p] != 0x3B:
                        if v[p - 1] in (0x22, 0x27):
                            self.flags["MULTIPART_INVALID_QUOTING"] = 1
                        return -12
                    p += 1
        if filename_star and not part.filename:
            return -21
        return 1

    def check_quotes(self, value: bytes, quote: int) -> None:
        # A single quote inside a double-quoted value is fine; elsewhere it
        # hints at a parser-confusion attempt.
        if quote != 0x22 and b"'" in value:
            self.flags["MULTIPART_INVALID_QUOTING"] = 1

    # -- end of body -----------------------------------------------------------

    def finish(self) -> None:
        """ModSecurity's multipart_complete: is the payload finished?"""
        if self.complete:
            return
        if self.boundary_count == 0:
            raise self.fail("Multipart: No boundaries found in payload.", parser_error=False)
        # The final boundary may end the body without a line ending.
        tail_start = self.body.rfind(b"\n") + 1
        tail = self.body[tail_start:]
        if self.contains_line and tail == self.needle + b"--":
            if self.crlf_buf_end == 2:
                self.flags["MULTIPART_LF_LINE"] = 1
            if not self.data_read:
                self.flags["MULTIPART_INVALID_PART"] = 1
            self.end_part(last=True)
            self.complete = True
            return
        if self.partial:
            part = self.part
            if part is not None and part.in_data:
                if part.data_start < 0:
                    part.data_start = self.tail_start
                part.data_end = len(self.body)
            else:
                self.part = None  # cut inside its headers: nothing to name it by
            self.end_part(last=True)
            self.complete = True
            return
        raise self.fail("Multipart: Final boundary missing.", parser_error=False)


def _count_boundary_params(value: bytes) -> int:
    """How many times "boundary" (any case) appears with an '=' somewhere after it."""
    lower = value.lower()
    last_eq = lower.rfind(b"=")
    return sum(1 for m in _BOUNDARY_WORD.finditer(lower) if m.end() <= last_eq)


def _boundary_valid(boundary: bytes) -> bool:
    return _BOUNDARY_CHARS.fullmatch(boundary) is not None and not boundary.endswith(b" ")


def _skip(v: bytes, p: int) -> int:
    m = _CD_SPACE.match(v, p)
    return m.end() if m else p


def _chomp(value: bytes) -> bytes:
    # Like ModSecurity's chomp(): drop trailing CR/LF, unless that is all there is.
    stripped = value.rstrip(b"\r\n")
    return stripped if stripped else value


def _show(raw: bytes) -> str:
    """Bytes for an error message: printable ASCII as is, the rest as \\xHH."""
    return "".join(chr(c) if 0x20 <= c < 0x7F else f"\\x{c:02x}" for c in raw[:256])
