"""XML request bodies -> the ``XML`` collection (``XML:/*``, ``XML://@*``).

Parsing goes through ``defusedxml``'s expat SAX parser: a DTD may be present
but external entities and external DTDs are never fetched, and any entity
declaration is refused, so "billion laughs" and XXE payloads fail at once
with ``REQBODY_ERROR`` instead of expanding or reading files. (ModSecurity
with libxml2 accepts and expands internal entities, and silently leaves
external ones empty; refusing both is the safer choice.)

Otherwise the result matches ModSecurity v3 (checked against libmodsecurity
3.0.15): the root element's text content is one value, every attribute
value is one value in document order, namespace declarations are not
attributes and undeclared prefixes are tolerated (parsing is not
namespace-aware, as libxml2 only warns). A malformed document sets
``error`` but, as in ModSecurity, what was read before the error is still
exposed, so a payload in a broken document can be inspected. An empty body
is an error too.

Expat is event driven and iterative: deep nesting costs no recursion, and
no tree is built.
"""

from __future__ import annotations

from xml.parsers import expat
from xml.sax import SAXParseException
from xml.sax.handler import ContentHandler
from xml.sax.xmlreader import AttributesImpl

from defusedxml.expatreader import DefusedExpatParser  # type: ignore[import-untyped,unused-ignore]

from waf.bodyprocessors.result import BodyResult
from waf.bodyprocessors.xml_document import XmlDocument

_PREFIX = "XML parsing error: "


class _Parser(DefusedExpatParser):  # type: ignore[misc,unused-ignore]
    """defusedxml's SAX parser, told never to read an external DTD subset.

    A ``<!DOCTYPE r SYSTEM "...">`` is then simply not followed (as in
    ModSecurity) instead of failing the whole document.
    """

    def reset(self) -> None:
        super().reset()
        self._parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)


class _Collector(ContentHandler):
    """Keeps text and attribute values instead of a tree."""

    def __init__(self) -> None:
        super().__init__()
        self.started = False
        self.text: list[str] = []
        self.attribute_values: list[str] = []

    def startElement(self, name: str, attrs: AttributesImpl) -> None:  # SAX spelling
        self.started = True
        for qname, value in attrs.items():
            if qname != "xmlns" and not qname.startswith("xmlns:"):
                self.attribute_values.append(value)

    def characters(self, content: str) -> None:
        # Expat only reports character data inside the root element.
        self.text.append(content)


def parse_xml(body: bytes, *, partial: bool = False) -> BodyResult:
    """Parse an XML document; a malformed or entity-declaring one sets ``error``.

    A ``partial`` body (the first bytes of a longer one) may stop anywhere: only
    what it does contain must be well-formed.
    """
    result = BodyResult()
    collector = _Collector()
    parser = _Parser()
    parser.setContentHandler(collector)
    try:
        parser.feed(body)
        if not partial:
            parser.close()
    except Exception as exc:  # expat, SAX and defusedxml errors alike
        result.error = _PREFIX + _describe(exc)
    if collector.started:
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
    if isinstance(exc, SAXParseException):
        line, column = exc.getLineNumber(), exc.getColumnNumber()
        return f"{exc.getMessage()} at line {line}, column {column}."
    message = str(exc) or name
    return message if message.endswith(".") else message + "."
