"""Benign traffic: SOAP and other XML bodies that business systems exchange.

Writes ``benign/0011-xml-soap.yaml`` (kind ``xml-soap``): SOAP 1.1 (SOAPAction)
and 1.2 envelopes, WS-Security and WS-Addressing headers, a CRM SOAP query
carrying its own query language, Exchange Web Services, a marketplace listing
with HTML in CDATA, XML-RPC from a blogging app, SAML POST and redirect
bindings, Atom publishing, object-store XML (multi-delete, multipart complete),
a UBL e-invoice, an Apple MDM check-in plist (with its public DOCTYPE), UPnP
control and an address-validation API that takes XML in the query string.
"""

# Real documents have typographic dashes and accented names: keep them.
# ruff: noqa: RUF001

from __future__ import annotations

import base64
import hashlib
import zlib
from typing import Any
from urllib.parse import quote

from benign_lib import (
    CHROME_UA,
    api_headers,
    basic,
    benign,
    form,
    hexid,
    req,
    site_headers,
    token,
    uid,
)
from common import write

KIND = "xml-soap"
T = "2024-11-05T09:42:13Z"
Case = tuple[str, dict[str, Any]]


def _soap11(body: str, header: str = "", ns: str = "") -> str:
    return ('<?xml version="1.0" encoding="utf-8"?>\n<soap:Envelope xmlns:soap="http://schemas.'
            'xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xmlns:xsd="http://www.w3.org/2001/XMLSchema"{ns}>\n'
            + (f"  <soap:Header>{header}</soap:Header>\n" if header else "")
            + f"  <soap:Body>\n    {body}\n  </soap:Body>\n</soap:Envelope>\n")


def _soap12(body: str, header: str = "", ns: str = "") -> str:
    return ('<?xml version="1.0" encoding="utf-8"?>\n<soap12:Envelope xmlns:soap12="http://www.'
            f'w3.org/2003/05/soap-envelope"{ns}>\n'
            + (f"  <soap12:Header>{header}</soap12:Header>\n" if header else "")
            + f"  <soap12:Body>\n    {body}\n  </soap12:Body>\n</soap12:Envelope>\n")


WSSE = ('<wsse:Security soap:mustUnderstand="1" xmlns:wsse="http://docs.oasis-open.org/wss/2004/'
        '01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:wsu="http://docs.oasis-open.org/'
        'wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"><wsu:Timestamp wsu:Id="TS-1">'
        f"<wsu:Created>{T}</wsu:Created><wsu:Expires>2024-11-05T09:47:13Z</wsu:Expires>"
        '</wsu:Timestamp><wsse:UsernameToken wsu:Id="UT-1"><wsse:Username>shop-integration'
        '</wsse:Username><wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-'
        '200401-wss-username-token-profile-1.0#PasswordDigest">'
        + base64.b64encode(bytes.fromhex(hexid("pwd", 40))).decode()
        + '</wsse:Password><wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/'
        'oasis-200401-wss-soap-message-security-1.0#Base64Binary">'
        + base64.b64encode(bytes.fromhex(hexid("nonce", 32))).decode()
        + f"</wsse:Nonce><wsu:Created>{T}</wsu:Created></wsse:UsernameToken></wsse:Security>")


def soap() -> list[Case]:
    out: list[Case] = []
    soap_client = {"Host": "services.example.com", "User-Agent": "Apache-CXF/4.0.5",
                   "Accept": "*/*"}
    out.append(("SOAP 1.1 with SOAPAction: currency conversion", req(
        "POST", "/CurrencyService.asmx", {**soap_client, "SOAPAction":
                                          '"http://tempuri.org/ConvertAmount"'},
        _soap11('<ConvertAmount xmlns="http://tempuri.org/"><from>EUR</from><to>USD</to>'
                "<amount>61.48</amount><date>2024-11-05</date></ConvertAmount>"),
        "text/xml; charset=utf-8")))
    out.append(("SOAP 1.2 with the action in the content type", req(
        "POST", "/ws/ShippingService", {**soap_client, "User-Agent": "Axis2/1.8.2"},
        _soap12('<ship:GetRates xmlns:ship="http://ws.example.com/shipping/v3"><ship:From '
                'postalCode="10001" country="US"/><ship:To postalCode="D02 XY45" country="IE"/>'
                '<ship:Package weightLb="2.5" lengthIn="12" widthIn="12" heightIn="4"/>'
                "<ship:Description>Union Jack Flag 3'x5' &amp; Rock &amp; Roll Tee"
                "</ship:Description></ship:GetRates>"),
        'application/soap+xml; charset=utf-8; action="http://ws.example.com/shipping/v3/'
        'GetRates"')))
    out.append(("SOAP with WS-Security UsernameToken (PasswordDigest)", req(
        "POST", "/services/OrderService", {**soap_client, "SOAPAction": '"urn:submitOrder"'},
        _soap11('<ord:submitOrder xmlns:ord="urn:example:orders"><ord:orderId>10482</ord:orderId>'
                "<ord:customer><ord:name>Siobhán O'Brien</ord:name><ord:email>"
                "siobhan.obrien@example.ie</ord:email></ord:customer><ord:note>Leave with "
                "neighbour at #12 &lt;if out&gt;</ord:note></ord:submitOrder>", WSSE),
        "text/xml; charset=utf-8")))
    wsa = ('<wsa:Action xmlns:wsa="http://www.w3.org/2005/08/addressing">http://ws.example.com/'
           'inventory/IInventory/Reserve</wsa:Action><wsa:MessageID xmlns:wsa="http://www.w3.org/'
           f'2005/08/addressing">urn:uuid:{uid("wsa")}</wsa:MessageID><wsa:ReplyTo xmlns:wsa="'
           'http://www.w3.org/2005/08/addressing"><wsa:Address>http://www.w3.org/2005/08/'
           'addressing/anonymous</wsa:Address></wsa:ReplyTo><wsa:To xmlns:wsa="http://www.w3.org/'
           '2005/08/addressing">https://services.example.com/InventoryService.svc</wsa:To>')
    out.append(("SOAP 1.2 with WS-Addressing headers (WCF client)", req(
        "POST", "/InventoryService.svc", {**soap_client, "User-Agent": "Microsoft WCF 4.8"},
        _soap12('<Reserve xmlns="http://ws.example.com/inventory"><sku>FLAG-UJ-3X5</sku>'
                "<quantity>2</quantity></Reserve>", wsa),
        'application/soap+xml; charset=utf-8; action="http://ws.example.com/inventory/'
        'IInventory/Reserve"')))
    out.append(("CRM SOAP API query carrying its own query language", req(
        "POST", "/services/Soap/u/61.0", {
            "Host": "example.my.salesforce.example", "User-Agent": "simple-salesforce/1.12.6",
            "SOAPAction": '""'},
        _soap11('<urn:query><urn:queryString>SELECT Id, Name, BillingCity FROM Account WHERE '
                "Name LIKE 'O\\'Brien%' AND CreatedDate = LAST_N_DAYS:30 ORDER BY Name LIMIT 50"
                "</urn:queryString></urn:query>",
                f"<urn:SessionHeader><urn:sessionId>00D{token('sf', 12)}!AQ{token('sfs', 96)}"
                "</urn:sessionId></urn:SessionHeader>",
                ' xmlns:urn="urn:partner.soap.sforce.com"'),
        "text/xml; charset=UTF-8")))
    out.append(("Exchange Web Services FindItem", req(
        "POST", "/EWS/Exchange.asmx", {
            "Host": "mail.corp.example.com", "User-Agent": "ExchangeServicesClient/15.00.0913.015",
            "Authorization": basic("CORP\\priya", "Spr1ng-2024!"), "Accept": "text/xml"},
        '<?xml version="1.0" encoding="utf-8"?>\n<soap:Envelope xmlns:soap="http://schemas.'
        'xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/'
        '2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">'
        '<soap:Header><t:RequestServerVersion Version="Exchange2016"/></soap:Header><soap:Body>'
        '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>'
        '<t:AdditionalProperties><t:FieldURI FieldURI="item:Subject"/></t:AdditionalProperties>'
        '</m:ItemShape><m:IndexedPageItemView MaxEntriesReturned="50" Offset="0" BasePoint="'
        'Beginning"/><m:Restriction><t:Contains ContainmentMode="Substring" ContainmentComparison'
        '="IgnoreCase"><t:FieldURI FieldURI="item:Subject"/><t:Constant Value="invoice #42"/>'
        '</t:Contains></m:Restriction><m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/>'
        "</m:ParentFolderIds></m:FindItem></soap:Body></soap:Envelope>",
        "text/xml; charset=utf-8")))
    desc_html = ("<div style=\"font-family:Arial\"><h2>Union Jack Flag 3'x5'</h2><p>Heavy-duty "
                 "nylon, <b>brass grommets</b>, fade resistant.</p><ul><li>Size: 3' x 5'</li>"
                 "<li>Double stitched</li></ul><img src=\"https://cdn.example.com/flag.jpg\" "
                 "alt=\"flag\"></div>")
    out.append(("marketplace listing API: HTML description in CDATA", req(
        "POST", "/ws/api.dll", {
            "Host": "api.marketplace.example", "User-Agent": "ebaysdk/2.2.0",
            "X-EBAY-API-CALL-NAME": "AddFixedPriceItem", "X-EBAY-API-SITEID": "3",
            "X-EBAY-API-COMPATIBILITY-LEVEL": "1271", "X-EBAY-API-IAF-TOKEN":
            "v^1.1#i^1#p^3#r^1#f^0#I^3#t^" + token("ebay", 200)},
        '<?xml version="1.0" encoding="utf-8"?>\n<AddFixedPriceItemRequest xmlns="urn:ebay:apis:'
        'eBLBaseComponents"><Item><Title>Union Jack Flag 3x5 ft Nylon - UK Great Britain'
        f"</Title><Description><![CDATA[{desc_html}]]></Description><PrimaryCategory>"
        "<CategoryID>43533</CategoryID></PrimaryCategory><StartPrice currencyID=\"GBP\">18.50"
        "</StartPrice><Quantity>25</Quantity><SKU>FLAG-UJ-3X5</SKU></Item>"
        "</AddFixedPriceItemRequest>", "text/xml")))
    out.append(("UPnP AV transport control (smart speaker app)", req(
        "POST", "/MediaRenderer/AVTransport/Control", {
            "Host": "192.168.1.42:1400", "User-Agent": "Linux UPnP/1.0 Sonos/80.1-55014 "
                                                       "(ICRU_iPhone15,3)",
            "SOAPACTION": '"urn:schemas-upnp-org:service:AVTransport:1#SetAVTransportURI"'},
        _soap11('<u:SetAVTransportURI xmlns:u="urn:schemas-upnp-org:service:AVTransport:1">'
                "<InstanceID>0</InstanceID><CurrentURI>x-sonos-http:track%3a1234567.mp3?sid=12"
                "&amp;flags=8224&amp;sn=1</CurrentURI><CurrentURIMetaData>&lt;DIDL-Lite xmlns:"
                "dc=&quot;http://purl.org/dc/elements/1.1/&quot;&gt;&lt;item&gt;&lt;dc:title&gt;"
                "Rock &amp;amp; Roll&lt;/dc:title&gt;&lt;/item&gt;&lt;/DIDL-Lite&gt;"
                "</CurrentURIMetaData></u:SetAVTransportURI>"),
        'text/xml; charset="utf-8"')))
    return out


def other_xml() -> list[Case]:
    out: list[Case] = []
    out.append(("XML-RPC from a blogging app (wp.newPost)", req(
        "POST", "/xmlrpc.php", {"Host": "blog.example.org", "User-Agent": "wp-iphone/25.2 "
                                                                          "(iOS 18.1)"},
        '<?xml version="1.0"?>\n<methodCall><methodName>wp.newPost</methodName><params>'
        "<param><value><int>1</int></value></param><param><value><string>priya</string></value>"
        "</param><param><value><string>app-password-" + token("wpapp", 24) + "</string></value>"
        "</param><param><value><struct><member><name>post_title</name><value><string>5 myths "
        "about drop shipping</string></value></member><member><name>post_content</name><value>"
        "<string>&lt;p&gt;Myth #1: it's &quot;passive income&quot;&lt;/p&gt;</string></value>"
        "</member><member><name>post_status</name><value><string>draft</string></value></member>"
        "</struct></value></param></params></methodCall>\n", "text/xml")))
    assertion = ('<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml='
                 '"urn:oasis:names:tc:SAML:2.0:assertion" ID="_' + hexid("samlr", 40) + '" '
                 f'Version="2.0" IssueInstant="{T}" Destination="https://app.example.io/saml/acs"'
                 '><saml:Issuer>https://idp.example.com/saml2</saml:Issuer><samlp:Status>'
                 '<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>'
                 '</samlp:Status><saml:Assertion ID="_' + hexid("samla", 40) + '" Version="2.0" '
                 f'IssueInstant="{T}"><saml:Issuer>https://idp.example.com/saml2</saml:Issuer>'
                 '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>'
                 '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
                 '<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-'
                 'sha256"/></ds:SignedInfo><ds:SignatureValue>' + token("samlsig", 344) +
                 '</ds:SignatureValue></ds:Signature><saml:Subject><saml:NameID Format="urn:oasis'
                 ':names:tc:SAML:1.1:nameid-format:emailAddress">siobhan.obrien@example.ie'
                 '</saml:NameID></saml:Subject><saml:AttributeStatement><saml:Attribute Name="'
                 'displayName"><saml:AttributeValue>Siobhán O\'Brien</saml:AttributeValue>'
                 "</saml:Attribute></saml:AttributeStatement></saml:Assertion></samlp:Response>")
    out.append(("SAML POST binding: base64 XML response in a form", req(
        "POST", "/saml/acs", site_headers(
            "app.example.io", Origin="https://idp.example.com", Referer="https://idp.example.com/",
            Sec_Fetch_Site="cross-site", Sec_Fetch_Mode="navigate", Sec_Fetch_Dest="document"),
        form([("SAMLResponse", base64.b64encode(assertion.encode()).decode()),
              ("RelayState", "https://app.example.io/dashboard?tab=billing")]),
        "application/x-www-form-urlencoded")))
    authn = ('<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_'
             + hexid("authn", 40) + f'" Version="2.0" IssueInstant="{T}" AssertionConsumer'
             'ServiceURL="https://app.example.io/saml/acs"><saml:Issuer xmlns:saml="urn:oasis:'
             'names:tc:SAML:2.0:assertion">https://app.example.io/saml/metadata</saml:Issuer>'
             "</samlp:AuthnRequest>")
    deflated = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = deflated.compress(authn.encode()) + deflated.flush()
    out.append(("SAML redirect binding: deflated request in the query", req(
        "GET", "/saml2/sso?SAMLRequest=" + quote(base64.b64encode(raw).decode(), safe="")
        + "&RelayState=" + quote("/dashboard?tab=billing", safe="") + "&SigAlg="
        + quote("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", safe="") + "&Signature="
        + quote(base64.b64encode(bytes.fromhex(hexid("redir", 64)) * 8).decode(), safe=""),
        site_headers("idp.example.com", Referer="https://app.example.io/"))))
    out.append(("Atom Publishing Protocol entry", req(
        "POST", "/atom/collections/posts", {
            "Host": "blog.example.org", "User-Agent": "MarsEdit/5.2.1",
            "Authorization": basic("zoe", token("atom", 20)), "Slug": "rock-and-roll-history"},
        '<?xml version="1.0" encoding="utf-8"?>\n<entry xmlns="http://www.w3.org/2005/Atom">'
        "<title>A short history of rock &amp; roll</title><author><name>Zoë Ångström</name>"
        f"</author><updated>{T}</updated><content type=\"html\">&lt;p&gt;It started in the "
        "1950s&amp;hellip;&lt;/p&gt;</content><category term=\"music\"/></entry>\n",
        "application/atom+xml;type=entry")))
    keys = "".join(f"<Object><Key>exports/2024/11/orders_{d:02d}.csv</Key></Object>"
                   for d in range(1, 6))
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Delete xmlns="http://s3.amazonaws.com/doc/'
            f'2006-03-01/"><Quiet>true</Quiet>{keys}<Object><Key>tmp/notes (1).txt</Key>'
            "<VersionId>3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo"
            "</VersionId></Object></Delete>\n")
    out.append(("object store multi-object delete", req(
        "POST", "/?delete", api_headers(
            "bucket.s3.eu-west-1.amazonaws.example", ua="aws-cli/2.18.0 Python/3.12.6",
            Content_MD5=base64.b64encode(hashlib.md5(body.encode()).digest()).decode(),
            X_Amz_Date="20241105T094213Z", Authorization="AWS4-HMAC-SHA256 Credential=AKIAIOS"
            "FODNN7EXAMPLE/20241105/eu-west-1/s3/aws4_request, SignedHeaders=content-md5;host;"
            f"x-amz-date, Signature={hexid('mdel', 64)}"), body, "application/xml")))
    parts = "".join(f'<Part><PartNumber>{n}</PartNumber><ETag>"{hexid(f"part{n}")}"</ETag>'
                    "</Part>" for n in range(1, 4))
    out.append(("object store: complete a multipart upload", req(
        "POST", "/videos/launch%20event%20(final).mp4?uploadId=" + token("upl", 64), api_headers(
            "bucket.s3.eu-west-1.amazonaws.example", ua="aws-sdk-js/3.682.0",
            X_Amz_Date="20241105T094213Z", Authorization="AWS4-HMAC-SHA256 Credential=AKIAIOS"
            "FODNN7EXAMPLE/20241105/eu-west-1/s3/aws4_request, SignedHeaders=host;x-amz-date, "
            f"Signature={hexid('cmu', 64)}"),
        f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>", "application/xml")))
    ubl = ('<?xml version="1.0" encoding="UTF-8"?>\n<Invoice xmlns="urn:oasis:names:specification:'
           'ubl:schema:xsd:Invoice-2" xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:'
           'CommonAggregateComponents-2" xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd'
           ':CommonBasicComponents-2"><cbc:CustomizationID>urn:cen.eu:en16931:2017#compliant#urn:'
           "fdc:peppol.eu:2017:poacc:billing:3.0</cbc:CustomizationID><cbc:ID>INV-2024-113</cbc:ID>"
           "<cbc:IssueDate>2024-11-05</cbc:IssueDate><cbc:DocumentCurrencyCode>EUR"
           "</cbc:DocumentCurrencyCode><cac:AccountingSupplierParty><cac:Party><cac:PartyName>"
           "<cbc:Name>Ångström AB</cbc:Name></cac:PartyName></cac:Party>"
           "</cac:AccountingSupplierParty><cac:AccountingCustomerParty><cac:Party><cac:PartyName>"
           "<cbc:Name>O'Brien &amp; Daughters Ltd.</cbc:Name></cac:PartyName></cac:Party>"
           '</cac:AccountingCustomerParty><cac:LegalMonetaryTotal><cbc:PayableAmount currencyID="'
           'EUR">61.48</cbc:PayableAmount></cac:LegalMonetaryTotal></Invoice>\n')
    out.append(("e-invoice (UBL / PEPPOL) submission", req(
        "POST", "/api/v2/documents/outbound", api_headers(
            "ap.einvoice.example", ua="peppol-client/3.1", token=token("peppol", 40),
            X_Peppol_Receiver="iso6523-actorid-upis::0196:IE6388047V"), ubl,
        "application/xml")))
    plist = ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST '
             '1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0">\n'
             "<dict>\n\t<key>MessageType</key>\n\t<string>TokenUpdate</string>\n\t<key>Topic</key>"
             "\n\t<string>com.apple.mgmt.External." + uid("mdm") + "</string>\n\t<key>UDID</key>"
             "\n\t<string>" + hexid("udid", 40).upper() + "</string>\n\t<key>Token</key>\n\t<data>"
             + base64.b64encode(bytes.fromhex(hexid("apns", 64))).decode() + "</data>\n</dict>\n"
             "</plist>\n")
    out.append(("Apple MDM check-in plist (with Apple's public DOCTYPE)", req(
        "PUT", "/mdm/checkin", {"Host": "mdm.corp.example.com",
                                "User-Agent": "MDM/1.0", "Mdm-Signature": token("mdmsig", 1200)},
        plist, "application/x-apple-aspen-mdm-checkin")))
    verify = ('<AddressValidateRequest USERID="' + token("usps", 12).upper() + '"><Revision>1'
              '</Revision><Address ID="0"><Address1>Apt. #4B</Address1><Address2>1600 '
              "Amphitheatre Pkwy</Address2><City>Mountain View</City><State>CA</State><Zip5>94043"
              "</Zip5><Zip4></Zip4></Address></AddressValidateRequest>")
    out.append(("address validation API with XML in the query string", req(
        "GET", "/ShippingAPI.dll?API=Verify&XML=" + quote(verify, safe=""),
        {"Host": "secure.shippingapis.example", "User-Agent": "woocommerce-usps/4.7.0"})))
    out.append(("RSS/XML with a stylesheet processing instruction and comments", req(
        "POST", "/api/feeds/validate", api_headers("tools.example.com", ua=CHROME_UA),
        '<?xml version="1.0" encoding="UTF-8"?>\n<?xml-stylesheet type="text/xsl" href="/feed.xsl"'
        '?>\n<!-- generated by Hugo 0.138 -->\n<rss version="2.0" xmlns:atom="http://www.w3.org/'
        '2005/Atom"><channel><title>Example Blog</title><link>https://blog.example.org/</link>'
        "<item><title>5 myths about drop shipping</title><link>https://blog.example.org/2024/11/"
        "05/drop-shipping/?utm_source=rss&amp;utm_medium=feed</link><description><![CDATA[<p>"
        "Myth #1: it's \"passive income\"</p>]]></description></item></channel></rss>\n",
        "application/rss+xml")))
    out.append(("KML upload from a mapping tool", req(
        "POST", "/api/v1/maps/import", api_headers("maps.example.com", ua="QGIS/33800",
                                                    token=token("qgis", 40)),
        '<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2">'
        "<Document><name>Delivery zones &amp; stores</name><Placemark><name>Café de l'Époque"
        "</name><description>Open 7–23h</description><Point><coordinates>-6.2603,53.3498,0"
        "</coordinates></Point></Placemark></Document></kml>\n",
        "application/vnd.google-earth.kml+xml")))
    return out


def main() -> None:
    tests = []
    for desc, inp in soap() + other_xml():
        placement = "query" if inp["method"] == "GET" else \
            "form" if "urlencoded" in inp["headers"].get("Content-Type", "") else "xml"
        tests.append(benign(inp, KIND, desc, f"placement:{placement}"))
    write("benign/0011-xml-soap.yaml", 11, "Benign: SOAP envelopes and other business XML "
          "(WS-Security, CRM and mail services, XML-RPC, SAML, Atom, object stores, UBL, plist)",
          tests)


if __name__ == "__main__":
    main()
