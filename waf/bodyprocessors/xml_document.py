"""The parsed XML request body, queried by ``XML:<xpath>`` targets."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class XmlDocument:
    """The two views of an XML body that rule sets ask for.

    CRS only ever targets ``XML:/*`` and ``XML://@*``, so those are computed
    once at parse time instead of keeping a tree around.
    """

    # Text content of the root element: every descendant text and CDATA node
    # concatenated, entity references expanded (libxml2's xmlNodeGetContent).
    root_text: bytes
    # Every attribute value in document order (namespace declarations are not
    # attributes, as in XPath).
    attribute_values: list[bytes] = field(default_factory=list)

    def xpath(self, expr: str) -> list[bytes]:
        """Values selected by ``expr``, one per selected node, as ModSecurity gives them."""
        normalized = expr.strip()
        if normalized == "/*":
            return [self.root_text]
        if normalized == "//@*":
            return list(self.attribute_values)
        raise NotImplementedError(
            f"XPath expression {expr!r} is not supported by the XML body processor; "
            "supported expressions are '/*' (root element text) and '//@*' (all attribute values)"
        )
