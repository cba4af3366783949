"""XML request bodies -> the ``XML`` collection (``XML:/*``, ``XML://@*``).

Parsing goes through ``defusedxml``'s expat parser: a DTD may be present but
external entities and external DTDs are never fetched, and any entity
declaration is refused, so "billion laughs" and XXE payloads fail at once
with ``REQBODY_ERROR`` instead of expanding or reading files. (ModSecurity
with libxml2 accepts internal entity declarations and caps their expansion;
refusing them is the safer half of that.)

Nothing is kept but the two views CRS asks for: the root element's text
content and every attribute value. Expat is event driven and iterative, so
deep nesting costs no recursion.
"""

from __future__ import annotations

from typing import Any

from defusedxml.ElementTree import DefusedXMLParser  # type: ignore[import-untyped,unused-ignore]

from waf.bodyprocessors.result import BodyResult
from waf.bodyprocessors.xml_document import XmlDocument

_PREFIX = "XML parsing error: "


class _Collector:
    """Parser target that keeps text and attribute values instead of a tree."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.attribute_values: list[str] = []

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if attrib:
            self.attribute_values.extend(attrib.values())

    def end(self, tag: str) -> None:
        pass

    def data(self, text: str) -> None:
        # Expat only reports character data inside the root element.
        self.text.append(text)

    def close(self) -> None:
        pass


def parse_xml(body: bytes) -> BodyResult:
    """Parse an XML document; a malformed or entity-declaring one sets ``error``.

    An empty body gives no document and no error.
    """
    result = BodyResult()
    if not body:
        # No document to parse (e.g. a bodiless request that names an XML type).
        return result
    collector = _Collector()
    parser: Any = DefusedXMLParser(target=collector)
    try:
        parser.feed(body)
        parser.close()
    except Exception as exc:  # expat, defusedxml and codec errors alike
        result.error = _PREFIX + _describe(exc)
        return result
    result.xml = XmlDocument(
        root_text="".join(collector.text).encode("utf-8"),
        attribute_values=[value.encode("utf-8") for value in collector.attribute_values],
    )
    return result


def _describe(exc: Exception) -> str:
    name = type(exc).__name__
    if name == "EntitiesForbidden":
        return "entity declarations are not allowed (possible entity expansion or XXE attack)."
    if name == "ExternalReferenceForbidden":
        return "external entity references are not allowed (possible XXE attack)."
    if name == "DTDForbidden":
        return "DTDs are not allowed."
    message = str(exc) or name
    return message if message.endswith(".") else message + "."
