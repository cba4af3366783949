"""What a body processor hands the engine: the collections it fills."""

from __future__ import annotations

from dataclasses import dataclass, field

from waf.bodyprocessors.xml_document import XmlDocument


@dataclass
class FilePart:
    """One multipart part that carried a non-empty ``filename``.

    Feeds ``FILES`` (part name -> file name), ``FILES_NAMES``, ``FILES_SIZES``
    and ``FILES_COMBINED_SIZE``.
    """

    name: bytes
    filename: bytes
    size: int
    content_type: bytes | None
    # The part's own headers, in order, values unfolded.
    headers: list[tuple[bytes, bytes]]


@dataclass
class BodyResult:
    # ARGS_POST (or ARGS_GET when the engine parses the query string).
    args: list[tuple[bytes, bytes]] = field(default_factory=list)
    files: list[FilePart] = field(default_factory=list)
    # MULTIPART_PART_HEADERS: (part name, whole header line as sent).
    part_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    xml: XmlDocument | None = None
    # REQBODY_ERROR_MSG, prefixed like ModSecurity's ("Multipart parsing error: ...").
    # Not None means REQBODY_ERROR=1.
    error: str | None = None
    # MULTIPART_* flags (multipart) or URLENCODED_ERROR (urlencoded).
    flags: dict[str, int] = field(default_factory=dict)
    # MULTIPART_NAME / MULTIPART_FILENAME: every name= / filename= seen in a
    # Content-Disposition header, including those of parts later rejected.
    multipart_name: list[bytes] = field(default_factory=list)
    multipart_filename: list[bytes] = field(default_factory=list)
