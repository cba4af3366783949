"""Request body processors: turn a body into the collections rules inspect.

One function per ``REQBODY_PROCESSOR`` value, each total (malformed input sets
``BodyResult.error``, never raises) and bounded (limits on arguments, parts,
files and nesting)::

    from waf.bodyprocessors import parse_multipart

    result = parse_multipart(body, "multipart/form-data; boundary=x")
    result.args          # ARGS_POST: [(b"name", b"value"), ...]
    result.files         # FILES / FILES_NAMES / FILES_SIZES
    result.error         # REQBODY_ERROR_MSG, or None
    result.flags["MULTIPART_STRICT_ERROR"]

``parse_urlencoded`` (URLENCODED, also used for query strings),
``parse_multipart`` (MULTIPART), ``parse_json`` (JSON) and ``parse_xml``
(XML) behave like ModSecurity v3's processors; each module's docstring
says where and why they differ.
"""

from waf.bodyprocessors.json_body import parse_json
from waf.bodyprocessors.multipart import parse_multipart
from waf.bodyprocessors.result import BodyResult, FilePart
from waf.bodyprocessors.urlencoded import parse_urlencoded, url_decode
from waf.bodyprocessors.xml_body import parse_xml
from waf.bodyprocessors.xml_document import XmlDocument

__all__ = [
    "BodyResult",
    "FilePart",
    "XmlDocument",
    "parse_json",
    "parse_multipart",
    "parse_urlencoded",
    "parse_xml",
    "url_decode",
]
