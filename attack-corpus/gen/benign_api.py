"""Benign traffic: JSON API calls of typical SaaS and e-commerce back ends.

Writes ``benign/0001-api-json.yaml`` (kind ``api-json``). Each builder models one
endpoint the way its usual client calls it (a storefront SPA, a server-side SDK,
an analytics snippet) and runs once per customer/product row, so the same
request shape carries names with apostrophes and accents, prices, notes with
punctuation, ISO dates, UUIDs, JWTs and base64 blobs.
"""

# Real text has en dashes, multiplication signs and dotless i's: keep them.
# ruff: noqa: RUF001

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benign_lib import (
    CHROME_UA,
    IPHONE_UA,
    PEOPLE,
    PRODUCTS,
    api_headers,
    b64url,
    basic,
    benign,
    data_uri_png,
    hexid,
    js,
    jwt,
    py_json,
    req,
    token,
    uid,
    xhr_headers,
)
from common import write

KIND = "api-json"
JSON = "application/json"
Person = dict[str, str]
Product = dict[str, Any]
Builder = Callable[[int, Person, Product], tuple[str, dict[str, Any]]]

NOTES = [
    "Please leave it with the neighbour at #12 if I'm not in -- thanks!",
    "Gift: don't include the receipt :) Wrap in the blue paper if possible.",
    "Ring twice; the bell's broken. Deliver after 5 p.m. (weekdays) or any time Sat/Sun.",
    "Can you ship this with order #10482? Same address, same name (O'Brien).",
]


def _iso(day: int, hour: int = 9, minute: int = 30) -> str:
    return f"2024-{(day % 12) + 1:02d}-{(day % 27) + 1:02d}T{hour:02d}:{minute:02d}:00Z"


def _addr(p: Person) -> dict[str, str]:
    return {"name": f"{p['first']} {p['last']}", "company": p["company"],
            "address1": p["street"], "city": p["city"], "province": p["region"],
            "zip": p["zip"], "country_code": p["country"], "phone": p["phone"]}


def _user_token(i: int, p: Person) -> str:
    return jwt({"sub": uid(p["email"]), "email": p["email"], "iat": 1733000000 + i * 3600,
                "exp": 1733003600 + i * 3600, "scope": "read:orders write:orders",
                "iss": "https://auth.example.com/", "aud": "https://api.example.com"},
               alg="RS256", kid="2024-09-rsa")


def order_create(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"email": p["email"], "currency": ["EUR", "EUR", "EUR", "USD"][i % 4],
            "line_items": [{"sku": pr["sku"], "title": pr["name"], "variant": pr["variant"],
                            "quantity": pr["qty"], "price": pr["price"]},
                           {"sku": "GIFT-WRAP", "title": "Gift wrap & card", "quantity": 1,
                            "price": 3.5}],
            "shipping_address": _addr(p), "billing_same_as_shipping": i % 2 == 0,
            "discount_codes": ["SPRING-15"] if i % 2 else [], "note": NOTES[i % 4],
            "gift_message": "Happy b-day!! 🎂 Love, M & J xx", "accepts_marketing": False,
            "client_details": {"browser_ip": f"203.0.113.{20 + i}", "user_agent": CHROME_UA}}
    return ("storefront checkout: create order with line items and address",
            req("POST", "/api/v1/orders", xhr_headers("shop.example.com",
                X_CSRF_Token=token(f"csrf{i}", 43)), js(body), JSON))


def cart_add(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    engraving = ["J & M — 06/15/2024", "To my #1 dad <3", "\"Carpe diem\"", "Née Ångström"][i % 4]
    body = {"items": [{"id": 40000000000 + i * 7919, "quantity": pr["qty"],
                       "properties": {"Engraving": engraving, "_gift": "yes"}}],
            "sections": "cart-drawer,cart-icon-bubble", "sections_url": "/products/" + pr["sku"]}
    return ("add to cart with line-item properties (engraving text)",
            req("POST", "/cart/add.js", xhr_headers("shop.example.com",
                X_Requested_With="XMLHttpRequest"), js(body), JSON))


def customer_patch(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"first_name": p["first"], "last_name": p["last"], "phone": p["phone"],
            "birthday": f"19{70 + i * 7}-0{1 + i}-1{i}", "accepts_email_marketing": i % 2 == 1,
            "accepts_sms_marketing": False, "default_address": _addr(p),
            "tags": ["vip", "wholesale"] if i % 2 else ["newsletter"]}
    return ("account page: update customer profile",
            req("PATCH", f"/api/v1/customers/{uid(p['email'])}",
                xhr_headers("shop.example.com", Authorization="Bearer " + _user_token(i, p)),
                js(body), JSON))


def avatar_upload(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"avatar": data_uri_png(seed=i + 1, size=12 + 4 * i), "crop": {"x": 0, "y": 0,
            "width": 256, "height": 256}, "alt": f"Photo of {p['first']} {p['last']}"}
    return ("profile: avatar as a base64 data URI",
            req("PUT", "/api/v1/users/me/avatar",
                xhr_headers("app.example.io", Authorization="Bearer " + _user_token(i, p)),
                js(body), JSON))


def product_create(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    html = [
        "<p><strong>100% combed cotton</strong> tee for rock &amp; roll fans.</p>\n"
        "<ul><li>Relaxed fit</li><li>Machine wash cold</li></ul>",
        "<p>Fly it proudly: 3' x 5' nylon, brass grommets.</p><p><em>Made in the UK.</em></p>",
        "<h2>Care</h2><p>Water when the top 1\" of soil is dry. Bright, indirect light.</p>",
        "<p>Seats 2&ndash;6. Leaves drop down when you don't need the space.</p>"
        "<table><tr><td>Width</td><td>90 cm</td></tr></table>",
    ][i % 4]
    body = {"product": {"title": pr["name"], "body_html": html, "vendor": p["company"],
                        "product_type": "Apparel" if i == 0 else "Home & Garden",
                        "tags": "summer, rock & roll, unisex, best-seller",
                        "options": [{"name": "Size", "values": ["S", "M", "L", "XL"]},
                                    {"name": "Color", "values": ["Black", "Off-white"]}],
                        "variants": [{"sku": pr["sku"], "price": str(pr["price"]),
                                      "compare_at_price": str(round(pr["price"] * 1.2, 2)),
                                      "inventory_quantity": 25 + i, "weight": 0.35,
                                      "weight_unit": "kg", "option1": "M", "option2": "Black"}],
                        "metafields": [{"namespace": "seo", "key": "description",
                                        "type": "single_line_text_field",
                                        "value": f"{pr['name']} | Free returns"}],
                        "status": "draft", "published_at": None}}
    return ("admin API: create product with HTML description and variants",
            req("POST", "/admin/api/2024-10/products.json",
                api_headers("shop.example.com", ua="ShopifyAPI Ruby v14.7.0",
                            X_Shopify_Access_Token="shpat_" + hexid(f"shp{i}")),
                py_json(body), JSON))


def segment_track(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"type": "track", "event": "Product Added", "userId": uid(p["email"]),
            "anonymousId": uid(f"anon{i}"), "messageId": "ajs-next-" + hexid(f"m{i}"),
            "timestamp": _iso(i, 14, 5), "properties": {"product_id": pr["sku"],
            "name": pr["name"], "price": pr["price"], "quantity": pr["qty"], "currency": "USD",
            "url": f"https://shop.example.com/products/{pr['sku'].lower()}?variant=4000{i}"},
            "context": {"library": {"name": "analytics.js", "version": "next-1.72.0"},
                        "page": {"path": "/products/" + pr["sku"].lower(),
                                 "referrer": "https://www.google.com/",
                                 "search": "?utm_source=newsletter&utm_medium=email"
                                           "&utm_campaign=spring_sale_2024",
                                 "title": f"{pr['name']} – Example Shop",
                                 "url": "https://shop.example.com/products/" + pr["sku"].lower()},
                        "userAgent": CHROME_UA, "locale": "en-US",
                        "timezone": "Europe/Dublin",
                        "campaign": {"source": "newsletter", "medium": "email",
                                     "name": "spring_sale_2024"}},
            "writeKey": token(f"wk{i}", 32), "sentAt": _iso(i, 14, 6)}
    return ("analytics.js track event (Segment-style)",
            req("POST", "/v1/t", {"Host": "api.segment.example", "User-Agent": CHROME_UA,
                                  "Accept": "*/*", "Origin": "https://shop.example.com",
                                  "Referer": "https://shop.example.com/"},
                js(body), "text/plain"))


def segment_batch(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"batch": [
        {"type": "identify", "userId": uid(p["email"]), "traits": {
            "email": p["email"], "name": f"{p['first']} {p['last']}", "plan": "Pro (annual)",
            "company": {"name": p["company"], "employee_count": 12 + i}},
         "timestamp": _iso(i)},
        {"type": "page", "name": "Pricing", "properties": {
            "url": "https://app.example.io/pricing?billing=annual#compare",
            "title": "Pricing — Plans & FAQ"}, "timestamp": _iso(i, 9, 31)}],
        "context": {"library": {"name": "analytics-node", "version": "2.1.2"}}}
    return ("server-side analytics batch: identify + page",
            req("POST", "/v1/batch", api_headers("api.segment.example", ua="analytics-node/2.1.2",
                Authorization=basic(token("wk" + str(i), 32), "")),
                js(body), JSON))


def ga4_collect(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"client_id": f"{1234567890 + i}.{1712345678 + i}", "user_id": uid(p["email"]),
            "timestamp_micros": 1733000000000000 + i, "non_personalized_ads": False,
            "events": [{"name": "purchase", "params": {
                "transaction_id": f"T-{20240000 + i}", "value": pr["price"] * pr["qty"],
                "currency": "USD", "tax": 1.99, "shipping": 4.99, "coupon": "SPRING-15",
                "items": [{"item_id": pr["sku"], "item_name": pr["name"],
                           "item_variant": pr["variant"], "price": pr["price"],
                           "quantity": pr["qty"]}], "engagement_time_msec": 1200 + i}}]}
    return ("GA4 measurement protocol purchase event",
            req("POST", f"/mp/collect?measurement_id=G-{hexid('ga' + str(i), 10).upper()}"
                        f"&api_secret={token('sec' + str(i), 22)}",
                api_headers("www.google-analytics.example", ua="node-fetch/1.0"),
                js(body), JSON))


def llm_chat(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    prompts = [
        "Write a SQL query that lists customers who ordered more than twice in the last 30 "
        "days, sorted by total spend. Table names: customers, orders.",
        "Explain this error: TypeError: Cannot read properties of undefined (reading 'map') "
        "in my React component. I call items.map(i => <Row key={i.id} />).",
        "Translate to French: \"Your order has shipped! Track it here: <link>\". Keep the "
        "<link> placeholder as is.",
        "Summarise the customer's complaint in one sentence: 'I ordered the 1' tall plant & "
        "got a 6\" one... not happy; please refund or send the right size.'",
    ]
    body = {"model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 512, "stream": i % 2 == 0,
            "messages": [{"role": "system", "content": "You are a helpful assistant for an "
                                                       "e-commerce support team. Be concise."},
                         {"role": "user", "content": prompts[i % 4]}],
            "user": hexid(p["email"], 16)}
    return ("LLM chat completion request from a support tool",
            req("POST", "/v1/chat/completions",
                api_headers("llm.example.com", ua="OpenAI/Python 1.54.4",
                            token="sk-proj-" + token(f"oa{i}", 48),
                            X_Stainless_Lang="python", X_Stainless_Package_Version="1.54.4",
                            X_Stainless_OS="Linux", X_Stainless_Runtime="CPython",
                            X_Stainless_Runtime_Version="3.12.7"),
                py_json(body), JSON))


def slack_post(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    texts = [
        f":tada: New order *#{10480 + i}* from {p['first']} {p['last']} — "
        f"<https://admin.example.com/orders/{10480 + i}|view order> (${pr['price']})",
        "Deploy `web@v2.14.3` to *production* finished :white_check_mark: "
        "(<https://ci.example.com/runs/8812|logs>) cc <@U024BE7LH>",
        ":warning: p95 latency > 800ms on `/api/v1/search` for 5 min. Runbook: "
        "<https://wiki.example.com/runbooks/search-latency|search latency>",
        f"Weekly report for {p['company']}: 42 tickets closed, CSAT 4.8/5 :star:",
    ]
    body = {"channel": "C0" + hexid(f"ch{i}", 8).upper(), "text": texts[i % 4],
            "unfurl_links": False, "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": texts[i % 4]}},
                {"type": "context", "elements": [{"type": "mrkdwn",
                                                  "text": "Sent by *Orders bot* • <!date^"
                                                          f"{1733000000 + i}^{{date_short}}"
                                                          "|Dec>"}]},
                {"type": "actions", "elements": [{"type": "button", "action_id": "ack",
                                                  "text": {"type": "plain_text",
                                                           "text": "Acknowledge"},
                                                  "style": "primary", "value": f"ack_{i}"}]}]}
    return ("chat API: post a message with mrkdwn blocks",
            req("POST", "/api/chat.postMessage",
                api_headers("slack.example.com", ua="Slackbot-node/7.7.0",
                            token="xoxb-" + "-".join(hexid(f"x{i}{k}", 12) for k in range(3))),
                js(body), "application/json; charset=utf-8"))


def mail_send(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    html = (f"<!DOCTYPE html><html><body style=\"font-family:Arial,sans-serif\">"
            f"<h1>Thanks, {p['first']}!</h1><p>Your order <b>#{10480 + i}</b> is on its way.</p>"
            f"<p><a href=\"https://shop.example.com/orders/{10480 + i}?utm_source=email\">"
            f"Track your package</a></p><img src=\"https://cdn.example.com/email/logo.png\" "
            f"alt=\"Example Shop\" width=\"120\"></body></html>")
    body = {"personalizations": [{"to": [{"email": p["email"],
                                          "name": f"{p['first']} {p['last']}"}],
                                  "dynamic_template_data": {"order_id": 10480 + i}}],
            "from": {"email": "orders@shop.example.com", "name": "Example Shop"},
            "reply_to": {"email": "support@shop.example.com"},
            "subject": f"Your order #{10480 + i} has shipped 📦",
            "content": [{"type": "text/plain", "value": f"Hi {p['first']}, your order is on "
                                                        "its way. Track it at https://shop."
                                                        f"example.com/orders/{10480 + i}"},
                        {"type": "text/html", "value": html}],
            "categories": ["transactional", "shipping"],
            "tracking_settings": {"click_tracking": {"enable": True}}}
    return ("transactional email API: HTML and text bodies",
            req("POST", "/v3/mail/send", api_headers("mail.example.com",
                ua="sendgrid/6.11.0;python", token="SG." + token(f"sg{i}", 22) + "."
                + token(f"sg2{i}", 43)), py_json(body), JSON))


def login(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    passwords = ["Tr0ub4dor&3", "correct horse battery staple", "p@$$w0rd#2024!",
                 "Kx9#mZ!2qL&v'<>"]
    body = {"email": p["email"], "password": passwords[i % 4], "remember_me": i % 2 == 0,
            "captcha_token": "03AFcWeA" + token(f"cap{i}", 120)}
    return ("SPA login with a password full of symbols",
            req("POST", "/api/v1/auth/login", xhr_headers("app.example.io"), js(body), JSON))


def token_refresh(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"grant_type": "refresh_token", "client_id": token(f"cid{i}", 32),
            "refresh_token": "v1." + token(f"rt{i}", 86),
            "scope": "openid profile email offline_access"}
    return ("OAuth token refresh with a JSON body (Auth0-style)",
            req("POST", "/oauth/token", xhr_headers("auth.example.com",
                origin="https://app.example.io", Auth0_Client=b64url(js(
                    {"name": "auth0-spa-js", "version": "2.1.3"}).encode())),
                js(body), JSON))


def webauthn_finish(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    client_data = js({"type": "webauthn.create", "challenge": token(f"chal{i}", 43),
                      "origin": "https://app.example.io", "crossOrigin": False})
    body = {"id": token(f"cred{i}", 43), "rawId": token(f"cred{i}", 43), "type": "public-key",
            "response": {"clientDataJSON": b64url(client_data.encode()),
                         "attestationObject": "o2NmbXRkbm9uZWdhdHRTdG10oGhhdXRoRGF0YVjF"
                                              + token(f"att{i}", 260),
                         "transports": ["internal", "hybrid"]},
            "authenticatorAttachment": "platform", "clientExtensionResults": {"credProps": {
                "rk": True}}, "nickname": f"{p['first']}'s MacBook Pro"}
    return ("WebAuthn passkey registration (base64url blobs)",
            req("POST", "/api/v1/webauthn/register/finish", xhr_headers("app.example.io"),
                js(body), JSON))


def jira_issue(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    summaries = ["Checkout fails when the address contains an apostrophe (O'Brien)",
                 "Search for \"select a size\" returns no results",
                 "Export to CSV: commas inside quoted fields break columns",
                 "Dark mode: <code> blocks unreadable on iOS 18"]
    body = {"fields": {"project": {"key": "SHOP"}, "issuetype": {"name": "Bug"},
                       "summary": summaries[i % 4], "priority": {"name": "High"},
                       "labels": ["checkout", "customer-reported"],
                       "description": {"type": "doc", "version": 1, "content": [
                           {"type": "paragraph", "content": [
                               {"type": "text", "text": "Steps to reproduce:"}]},
                           {"type": "orderedList", "content": [
                               {"type": "listItem", "content": [{"type": "paragraph",
                                "content": [{"type": "text", "text": step}]}]}
                               for step in ("Add any item to the cart",
                                            f"Enter \"{p['last']}\" as last name",
                                            "Click \"Pay now\" → spinner forever")]},
                           {"type": "codeBlock", "attrs": {"language": "text"}, "content": [
                               {"type": "text", "text": "POST /api/v1/orders 500 (Internal "
                                                        "Server Error)\nat submitOrder "
                                                        "(checkout.js:212:17)"}]}]}}}
    return ("issue tracker API: bug report in a document-format description",
            req("POST", "/rest/api/3/issue", api_headers("example.atlassian.example",
                ua="Mozilla/5.0 (compatible; JiraCloudBot)", Authorization=basic(
                    p["email"], "ATATT3x" + token("jira" + str(i), 40))),
                py_json(body), JSON))


def calendar_event(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    titles = ["Q3 planning — budget & hiring", "1:1 Priya / Tomasz", "Design review: "
              "checkout v2 (bring laptops!)", "Team lunch @ Luigi's 🍝"]
    body = {"summary": titles[i % 4], "location": "Room 4.12 \"Ada Lovelace\", 4th floor",
            "description": "Agenda:\n1) Recap\n2) Open questions?\n3) Next steps\n\n"
                           "Join: https://meet.example.com/abc-defg-hij?pwd=" + token(f"m{i}"),
            "start": {"dateTime": f"2024-11-{4 + i:02d}T10:00:00+01:00",
                      "timeZone": "Europe/Berlin"},
            "end": {"dateTime": f"2024-11-{4 + i:02d}T11:30:00+01:00",
                    "timeZone": "Europe/Berlin"},
            "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR;UNTIL=20241231T235959Z"],
            "attendees": [{"email": p["email"], "displayName": f"{p['first']} {p['last']}",
                           "optional": False}, {"email": "team+eng@example.com"}],
            "reminders": {"useDefault": False, "overrides": [{"method": "popup",
                                                              "minutes": 10}]},
            "conferenceData": {"createRequest": {"requestId": uid(f"conf{i}")}}}
    return ("calendar API: recurring event with attendees and RRULE",
            req("POST", "/calendar/v3/calendars/primary/events?conferenceDataVersion=1"
                        "&sendUpdates=all", api_headers("calendar.example.com",
                ua="google-api-nodejs-client/9.4.1 (gzip)", token="ya29." + token(f"g{i}", 150)),
                js(body), JSON))


def crm_contact(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"properties": {"email": p["email"], "firstname": p["first"], "lastname": p["last"],
                           "phone": p["phone"], "company": p["company"],
                           "website": "https://www." + p["email"].split("@")[1] + "/",
                           "lifecyclestage": "lead", "hs_lead_status": "OPEN",
                           "notes_last_contacted": "Asked about bulk pricing (50+ units); "
                                                   "wants a quote by Fri. 'Urgent-ish.'",
                           "annualrevenue": 1250000 + i * 10000, "numemployees": "11-50"},
            "associations": [{"to": {"id": 51234567 + i}, "types": [
                {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]}]}
    return ("CRM API: create contact with custom properties",
            req("POST", "/crm/v3/objects/contacts", api_headers("api.crm.example.com",
                ua="hubspot-api-client-python; 9.0.0", token="pat-eu1-" + uid(f"crm{i}")),
                py_json(body), JSON))


def invoice(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"customer": {"name": p["company"], "email": p["email"],
                         "tax_id": ["IE6388047V", "FR40303265045", "ESB12345678", "US-EIN "
                                    "12-3456789"][i % 4], "address": _addr(p)},
            "currency": "EUR", "issue_date": f"2024-10-{10 + i}", "due_date": f"2024-11-{9 + i}",
            "payment_terms": "Net 30", "po_number": f"PO-2024/{771 + i}",
            "lines": [{"description": "Consulting — September (40 h @ €95/h)", "quantity": 40,
                       "unit_price": 95.0, "tax_rate": 0.23},
                      {"description": f"{pr['name']} ×{pr['qty']}", "quantity": pr["qty"],
                       "unit_price": pr["price"], "tax_rate": 0.23, "discount_percent": 10}],
            "memo": "Thank you for your business! Bank: IBAN IE29 AIBK 9311 5212 3456 78; "
                    "ref. INV-" + str(2024100 + i), "send_email": True}
    return ("invoicing API: invoice with tax ids, lines and a memo",
            req("POST", "/api/v1/invoices", api_headers("api.billing.example.com",
                ua="billing-sdk-ruby/3.2.0", token=token(f"inv{i}", 40),
                Idempotency_Key=uid(f"idem-inv{i}")), py_json(body), JSON))


def subscription(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"customer_id": "cus_" + token(f"cus{i}", 14), "plan": ["starter-monthly",
            "pro-annual", "team-annual", "enterprise-custom"][i % 4], "seats": 3 + i * 5,
            "trial_end": f"2024-12-{10 + i}T23:59:59Z", "coupon": "BLACKFRIDAY-30" if i % 2
            else None, "collection_method": "charge_automatically",
            "metadata": {"signup_source": "pricing-page", "sales_rep": "n/a",
                         "notes": "Switching from competitor; needs SSO (SAML) & SCIM."},
            "automatic_tax": {"enabled": True}, "cancel_at_period_end": False}
    return ("billing API: create subscription with trial and metadata",
            req("POST", "/api/v1/subscriptions", api_headers("api.billing.example.com",
                ua="billing-node/14.1.0", token=token(f"sub{i}", 40),
                Idempotency_Key=uid(f"idem-sub{i}")), py_json(body), JSON))


def webhook_endpoint(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    urls = ["https://hooks.example.org/incoming/stripe?token=" + token(f"h{i}", 24),
            "https://example.com/wp-json/wc/v3/webhooks/receive",
            "https://api.partner.example.net/v2/events?source=shop&format=json",
            "https://n8n.example.dev/webhook/3f6c1a2e-orders"]
    body = {"url": urls[i % 4], "description": "Orders → fulfilment (prod)",
            "events": ["order.created", "order.paid", "order.fulfilled", "refund.created"],
            "active": True, "secret": "whsec_" + token(f"ws{i}", 32),
            "headers": {"X-Source": "shop", "X-Env": "production"}, "api_version": "2024-10-01"}
    return ("register a webhook endpoint (callback URL with query string)",
            req("POST", "/api/v1/webhooks", xhr_headers("dashboard.example.com"),
                js(body), JSON))


def telemetry(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"device_id": f"thermo-{hexid(str(i), 12)}", "firmware": f"2.{i}.17-rc.1",
            "ts": 1733000000 + i * 60, "battery": 0.87 - i * 0.1,
            "readings": [{"t": 1733000000 + k * 10, "temp_c": -3.25 + k * 0.5 + i,
                          "rh": 54.1 + k, "co2_ppm": 612 + k * 3, "pm2_5": 4.2e-1 * (k + 1)}
                         for k in range(6)],
            "location": {"lat": 53.3498 + i / 100, "lon": -6.2603 - i / 100, "alt_m": 12.5},
            "flags": {"door_open": False, "low_battery": i == 2, "tamper": None}}
    return ("IoT telemetry batch: numbers, negatives, exponents, null",
            req("POST", "/api/v1/telemetry", api_headers("ingest.example.io",
                ua="esp-idf/5.2 thermo/2.1", X_Device_Key=token(f"dev{i}", 40)),
                py_json(body), JSON))


def geojson(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    names = ["Café de l'Époque", "St. Mary's Church (ruins)", "Trailhead — Lone Pine #3",
             "Ben & Jerry's Scoop Shop"]
    body = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": uid(f"geo{i}"), "properties": {"name": names[i % 4],
         "category": "poi", "rating": 4.5, "open_now": True, "tags": ["wifi", "outdoor"]},
         "geometry": {"type": "Point", "coordinates": [-0.1276 + i, 51.5072 - i]}},
        {"type": "Feature", "properties": {"name": "Delivery zone " + "ABCD"[i % 4]},
         "geometry": {"type": "Polygon", "coordinates": [[[-0.2, 51.4], [-0.1, 51.4],
                                                          [-0.1, 51.5], [-0.2, 51.5],
                                                          [-0.2, 51.4]]]}}]}
    return ("maps API: GeoJSON features with nested coordinate arrays",
            req("POST", "/api/v1/places/import", api_headers("maps.example.com",
                ua="axios/1.7.7", token=token(f"map{i}", 40)), js(body), "application/geo+json"
                if i % 2 else JSON))


def notification_settings(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"email": {"order_updates": True, "newsletter": i % 2 == 0, "digest": "weekly"},
            "push": {"enabled": True, "quiet_hours": {"from": "22:00", "to": "07:30",
                                                      "tz": "America/New_York"}},
            "sms": {"enabled": False, "number": p["phone"]},
            "channels": {"slack": {"webhook": "https://hooks.slack.example/services/T000/B000/"
                                              + token(f"sl{i}", 24)}}}
    return ("settings: nested notification preferences",
            req("PATCH", "/api/v1/settings/notifications", xhr_headers("app.example.io",
                Authorization="Bearer " + _user_token(i, p)), js(body), JSON))


def flags_evaluate(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"kind": "multi", "user": {"key": uid(p["email"]), "email": p["email"],
                                      "name": f"{p['first']} {p['last']}", "country": p["country"],
                                      "anonymous": False, "_meta": {"privateAttributes": [
                                          "email"]}},
            "organization": {"key": "org-" + hexid(p["company"], 8), "name": p["company"],
                             "plan": "enterprise", "seats": 250},
            "device": {"key": uid(f"dev{i}"), "os": "iOS 18.1", "app_version": "5.12.0 (1403)"}}
    return ("feature flags: evaluate a multi-context" + (
        " (REPORT method, as flag SDKs send with useReport)" if i == 2 else ""),
            req("REPORT" if i == 2 else "POST", "/sdk/evalx/contexts", api_headers(
                "clientsdk.flags.example.com", ua="iOSClient/9.10.0", Authorization=token(
                    f"mob{i}", 36)), js(body), JSON))


def review(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    reviews = [
        ("Love it!!! 😍", "Fits true to size (I'm 5'10\", 170 lbs -> M). Washed 3x, no "
         "shrinking. Only gripe: the print's a bit stiff at first... 4.5/5 really."),
        ("Not what I expected :-(", "The \"3'x5'\" flag is more like 2'9\" x 4'10\". Colours "
         "are great & the stitching's solid, though."),
        ("Healthy & well packed", "Arrived in 2 days; 1' tall as described (30 cm). Pot has "
         "a drainage hole — yay. Would order again, 10/10."),
        ("Sturdy; assembly = meh", "Instructions said \"insert bolt A into slot B\"... there "
         "is no slot B. Took 1 hr (w/ 2 people). Table itself? Gorgeous."),
    ]
    title, text = reviews[i % 4]
    body = {"product_id": pr["sku"], "rating": 5 - i % 3, "title": title, "body": text,
            "author": {"name": f"{p['first']} {p['last'][0]}.", "email": p["email"]},
            "verified_purchase": True, "recommend": i != 1, "photos": []}
    return ("product review with prose, quotes and measurements",
            req("POST", "/api/v1/reviews", xhr_headers("shop.example.com"), js(body), JSON))


def support_ticket(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    bodies = [
        "Hi,\n\nWhen I click \"Pay\" I get: Error: Cannot read properties of undefined "
        "(reading 'map'). Screenshot attached. Browser: Chrome 131 on Windows 11.\n\nThanks,\n"
        + p["first"],
        "Hello! I was charged twice (2 × €24.99) for order #10482 on 03/11. Could you refund "
        "one? Card ending ****4242. Merci d'avance!",
        "The link in your e-mail (https://shop.example.com/account/reset?token=abc...) says "
        "\"expired\" — I requested it < 5 min ago. Can you help?",
        "Q: Is the drop-leaf table's top solid wood or veneer? & what's the max weight "
        "per leaf (kg/lb)?",
    ]
    body = {"ticket": {"subject": ["Checkout error", "Double charge", "Reset link expired",
                                   "Pre-sales question"][i % 4], "comment": {"body": bodies[i % 4]},
                       "requester": {"name": f"{p['first']} {p['last']}", "email": p["email"]},
                       "priority": ["high", "urgent", "normal", "low"][i % 4],
                       "tags": ["web", "en"], "custom_fields": [{"id": 360001234567,
                                                                  "value": f"order_{10480 + i}"}]}}
    return ("helpdesk API: ticket with an error message quoted in prose",
            req("POST", "/api/v2/tickets.json", api_headers("example.zendesk.example",
                ua="Zendesk Web Widget", Authorization=basic(
                    p["email"] + "/token", token("zd" + str(i), 40))),
                js(body), JSON))


def team_invite(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"emails": [p["email"], f"ops+{i}@example.com", "j.smith@example.co.uk"],
            "role": ["member", "admin", "billing", "viewer"][i % 4],
            "message": f"Hey! Join {p['company']} on Example — we're moving our docs & "
                       "boards here :) Questions? Ping me.", "expires_in_days": 7,
            "groups": ["engineering", "design"]}
    return ("team invitations with a personal message",
            req("POST", f"/api/v1/teams/{uid('team' + str(i))}/invitations",
                xhr_headers("app.example.io", X_CSRF_Token=token(f"csrf-t{i}", 43)),
                js(body), JSON))


def payment_intent(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"amount": int(pr["price"] * 100) * pr["qty"], "currency": "eur",
            "payment_method": "pm_" + token(f"pm{i}", 24), "confirm": True,
            "return_url": "https://shop.example.com/checkout/complete?order=" + str(10480 + i),
            "metadata": {"order_id": str(10480 + i), "customer_email": p["email"]},
            "shipping": {"name": f"{p['first']} {p['last']}", "address": {
                "line1": p["street"], "city": p["city"], "postal_code": p["zip"],
                "country": p["country"]}},
            "statement_descriptor_suffix": "EXAMPLE SHOP"}
    return ("payments API: create and confirm a payment",
            req("POST", "/api/v1/payment_intents", api_headers("payments.example.com",
                ua="payments-python/10.12.0", token="sk_live_" + token(f"pk{i}", 24),
                Idempotency_Key=uid(f"pi{i}")), py_json(body), JSON))


def shipping_rates(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"shipment": {"ship_from": {"postal_code": "10001", "country_code": "US"},
                         "ship_to": {"postal_code": p["zip"], "country_code": p["country"],
                                     "city_locality": p["city"],
                                     "address_residential_indicator": "yes"},
                         "packages": [{"weight": {"value": 2.5 + i, "unit": "pound"},
                                       "dimensions": {"unit": "inch", "length": 12,
                                                      "width": 12, "height": 4 + i}}],
                         "customs": {"contents": "merchandise", "non_delivery": "return_to_"
                                     "sender", "customs_items": [{"description": pr["name"],
                                     "quantity": pr["qty"], "value": {"amount": pr["price"],
                                                                      "currency": "usd"},
                                     "harmonized_tariff_code": "6109.10.0012"}]}},
            "rate_options": {"carrier_ids": ["se-123890", "se-123891"], "calculate_tax_amount":
                             True}}
    return ("shipping API: rate request with dimensions and customs",
            req("POST", "/v1/rates", api_headers("api.shipping.example.com",
                ua="Shipping-Node/2.0", API_Key="TEST_" + token(f"ship{i}", 40)),
                py_json(body), JSON))


def document_save(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"id": uid(f"doc{i}"), "version": 17 + i, "title": ["Meeting notes 11/04",
            "Onboarding: read me first!", "Launch checklist ✅", "Ideas & wishlist"][i % 4],
            "content": {"type": "doc", "content": [
                {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text",
                                                                        "text": "Action items"}]},
                {"type": "taskList", "content": [{"type": "taskItem", "attrs": {
                    "checked": k == 0}, "content": [{"type": "paragraph", "content": [
                        {"type": "text", "text": t}]}]} for k, t in enumerate(
                    ["Email O'Neil re: contract", "Fix the \"select a size\" bug",
                     "Book room for Tue @ 3pm"])]},
                {"type": "paragraph", "content": [
                    {"type": "text", "text": "See "},
                    {"type": "text", "text": "the spec", "marks": [{"type": "link", "attrs": {
                        "href": "https://docs.example.com/specs/checkout-v2#edge-cases"}}]},
                    {"type": "text", "text": " — and use "},
                    {"type": "text", "text": "npm run build", "marks": [{"type": "code"}]},
                    {"type": "text", "text": " before pushing."}]}]},
            "updated_at": _iso(i, 16, 45)}
    return ("collaborative editor: save a rich-text document",
            req("PUT", f"/api/v1/documents/{uid('doc' + str(i))}", xhr_headers("notes.example.com"),
                js(body), JSON))


def form_response(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"form_id": "Xy" + token(f"f{i}", 6), "submitted_at": _iso(i, 11, 2), "answers": [
        {"field": {"id": "name", "type": "short_text"}, "text": f"{p['first']} {p['last']}"},
        {"field": {"id": "nps", "type": "opinion_scale"}, "number": 9 - i},
        {"field": {"id": "why", "type": "long_text"}, "text": [
            "Fast shipping & friendly support. Website's search could be better (try "
            "searching 'drop leaf'...).", "Too many e-mails!! Otherwise fine.",
            "Prices > competitors, but quality's worth it IMO.",
            "N/A -- first order; ask me again in a month :)"][i % 4]},
        {"field": {"id": "channels", "type": "multiple_choice"}, "choices": {
            "labels": ["Instagram", "A friend / word of mouth"]}},
        {"field": {"id": "ok", "type": "yes_no"}, "boolean": True}],
        "hidden": {"utm_source": "email", "customer_id": uid(p["email"])}}
    return ("survey submission: typed answers array",
            req("POST", "/forms/api/responses", xhr_headers("form.example.com"), js(body), JSON))


def task_create(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"content": ["Call the venue re: #s for Sat (30? 35?)",
                        "Renew domain example.org -- expires 12/01!",
                        "Buy: milk, eggs, 2x bread & coffee", "Review PR #4471 (auth/oidc)"][i % 4],
            "description": "", "due": {"date": f"2024-12-{5 + i:02d}", "is_recurring": False,
                                       "string": "next Thursday"},
            "priority": 4 - i % 4, "labels": ["errands"] if i == 2 else ["work"],
            "project_id": str(2203306141 + i), "assignee_id": None, "duration": {
                "amount": 30, "unit": "minute"}}
    return ("to-do app: create task with due date",
            req("POST", "/rest/v2/tasks", api_headers("api.todo.example.com", ua="Todo/iOS 24.11",
                token=hexid(f"todo{i}", 40), X_Request_Id=uid(f"req-task{i}")),
                js(body), JSON))


def sentry_event(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"event_id": hexid(f"ev{i}"), "timestamp": 1733000000.123 + i, "platform":
            "javascript", "level": "error", "release": f"web@2.14.{i}", "environment":
            "production", "exception": {"values": [{"type": "TypeError", "value":
            "Cannot read properties of undefined (reading 'price')", "stacktrace": {"frames": [
                {"filename": "https://shop.example.com/static/js/main.3f2a1b9c.js",
                 "function": "handleCheckout", "lineno": 212, "colno": 17, "in_app": True,
                 "context_line": "const total = items.reduce((s, i) => s + i.price * i.qty, "
                                 "0);",
                 "pre_context": ["function handleCheckout(cart) {", "  const { items } = cart;"],
                 "post_context": ["  return fetch('/api/v1/orders', { method: 'POST' });", "}"]},
                {"filename": "webpack:///./node_modules/react-dom/cjs/react-dom.production.js",
                 "function": "Object.invokeGuardedCallback", "lineno": 4164}]}}]},
            "request": {"url": "https://shop.example.com/checkout?step=payment",
                        "headers": {"User-Agent": IPHONE_UA}},
            "user": {"id": uid(p["email"]), "ip_address": "{{auto}}"},
            "breadcrumbs": {"values": [{"category": "ui.click", "message":
                                        "button#pay-now.btn.btn-primary[type=\"submit\"]"}]}}
    return ("error reporting SDK: event with a stack trace and source context",
            req("POST", f"/api/{4500000 + i}/store/?sentry_key={hexid(f'sk{i}')}"
                        "&sentry_version=7&sentry_client=sentry.javascript.react%2F8.40.0",
                {"Host": "o12345.ingest.sentry.example", "User-Agent": CHROME_UA,
                 "Accept": "*/*", "Origin": "https://shop.example.com",
                 "Referer": "https://shop.example.com/"}, js(body), "text/plain;charset=UTF-8"))


def rum_beacon(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"v": 1, "sid": token(f"rum{i}", 16), "url": ["/", "/products/tbl-dropleaf-oak",
            "/search?q=union+jack", "/checkout"][i % 4], "nav": "navigate",
            "metrics": {"LCP": 1840.5 + i, "INP": 96, "CLS": 0.031, "FCP": 902.2, "TTFB": 210.7},
            "attribution": {"LCP": {"element": "img.hero-banner", "url":
                                    "https://cdn.example.com/img/hero@2x.webp?w=1600"}},
            "conn": {"effectiveType": "4g", "rtt": 50, "downlink": 9.6, "saveData": False}}
    return ("navigator.sendBeacon web-vitals report (text/plain JSON)",
            req("POST", "/rum", {"Host": "shop.example.com", "User-Agent": CHROME_UA,
                                 "Accept": "*/*", "Origin": "https://shop.example.com",
                                 "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "empty",
                                 "Sec-Fetch-Site": "same-origin"},
                js(body), "text/plain;charset=UTF-8"))


def translations(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    sets = [
        {"cart.count": "{count, plural, =0 {Your cart is empty} one {# item} other {# items}}",
         "cart.total": "Total: {amount, number, ::currency/EUR}",
         "greeting": "Hello, <b>{name}</b>!"},
        {"checkout.terms": "I agree to the <a href=\"/terms\">Terms</a> & <a href=\"/privacy"
                           "\">Privacy Policy</a>.", "checkout.pay": "Pay %s now"},
        {"error.required": "“%{field}” can't be blank", "error.too_long":
         "is too long (maximum is %{count} characters)", "date.format": "%d/%m/%Y"},
        {"welcome": "Willkommen zurück, {name}! Du hast {n} neue Nachrichten.",
         "logout": "Abmelden", "search.placeholder": "Suchen … (z. B. „Größe wählen“)"},
    ]
    body = {"locale": ["en", "en", "en-GB", "de"][i % 4], "namespace": "storefront",
            "strings": sets[i % 4], "overwrite": False}
    return ("localisation API: ICU/printf message strings with markup",
            req("POST", "/api/v2/projects/shop/translations", api_headers(
                "api.i18n.example.com", ua="i18n-cli/3.6.1", token=token(f"i18n{i}", 40)),
                js(body), JSON))


def booking(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    requests = ["Late check-in (~11 pm); quiet room > high floor, if possible.",
                "We're celebrating our 10th anniversary -- any upgrade welcome ;)",
                "Travelling w/ a 6-month-old: cot please + ground floor (no lift?).",
                "Allergies: nuts & shellfish. Vegetarian breakfast x2."]
    body = {"property_id": 88120 + i, "check_in": f"2025-0{1 + i}-14", "check_out":
            f"2025-0{1 + i}-{17 + i}", "rooms": [{"type": "DBL-SUPERIOR", "adults": 2,
                                                  "children": [{"age": 0}] if i == 2 else []}],
            "guest": {"first_name": p["first"], "last_name": p["last"], "email": p["email"],
                      "phone": p["phone"], "country": p["country"]},
            "special_requests": requests[i % 4], "rate_plan": "FLEX-BB", "currency": "EUR",
            "total": 412.80 + i * 37, "marketing_opt_in": False}
    return ("hotel booking with special requests",
            req("POST", "/api/v1/bookings", xhr_headers("book.example-hotels.com",
                ua=IPHONE_UA), js(body), JSON))


def export_job(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"format": ["csv", "xlsx", "csv"][i % 3], "delimiter": ";" if i == 2 else ",",
            "columns": ["id", "created_at", "customer.email", "total", "status", "tags"],
            "filter": {"status": ["paid", "fulfilled"], "created_at": {
                "from": f"2024-0{1 + i}-01T00:00:00+00:00",
                "to": f"2024-0{2 + i}-01T00:00:00+00:00"},
                "total": {"min": 10, "max": 5000}, "search": "O'Brien"},
            "sort": [{"field": "created_at", "order": "desc"}], "notify": p["email"],
            "filename": f"orders_{2024}-{i + 1:02d} (export).csv"}
    return ("reporting: start an export with filters and a file name",
            req("POST", "/api/v1/exports", xhr_headers("admin.example.com"), js(body), JSON))


def note_markdown(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    notes = [
        "# Groceries\n- [x] milk\n- [ ] eggs (free-range!)\n- [ ] bread & butter\n\n> remember "
        "the 20% off coupon",
        "## Book notes — *Thinking, Fast and Slow*\n1. System 1 vs. System 2\n2. \"WYSIATI\"\n\n"
        "Rating: ★★★★☆",
        "Wi-Fi at the cabin: `Cabin_5G` / pw on the fridge. Check-out 10:00; keys -> lockbox "
        "(code in the e-mail).",
        "Ideas:\n* podcast ep. on \"drop shipping\" myths\n* collab w/ @jane_doe?\n* [site]"
        "(https://example.com/?ref=notes)",
    ]
    body = {"title": notes[i % 4].splitlines()[0].lstrip("#* ").strip()[:40],
            "body": notes[i % 4], "pinned": i == 0, "color": "#ffd966", "folder": "Personal",
            "updated_at": _iso(i, 20, 1)}
    return ("notes app: markdown note",
            req("POST", "/api/v1/notes", xhr_headers("notes.example.com", ua=IPHONE_UA),
                js(body), JSON))


def preferences(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"theme": ["dark", "light", "system", "high-contrast"][i % 4],
            "locale": ["pt-BR", "en-GB", "de-CH", "zh-Hant-TW"][i % 4],
            "timezone": ["America/Sao_Paulo", "Europe/London", "Europe/Zurich",
                         "Asia/Taipei"][i % 4],
            "date_format": ["dd/MM/yyyy", "d MMM yyyy", "dd.MM.yyyy", "yyyy/MM/dd"][i % 4],
            "number_format": {"decimal": ",", "group": "."} if i in (0, 2) else
            {"decimal": ".", "group": ","},
            "keyboard_shortcuts": {"search": "Ctrl+K", "new_item": "Shift+N",
                                   "go_home": "g h", "toggle_sidebar": "["},
            "editor": {"font": "\"JetBrains Mono\", monospace", "tab_size": 4,
                       "word_wrap": True}}
    return ("user preferences: locale, formats, shortcuts",
            req("PUT", f"/api/v1/users/{uid(p['email'])}/preferences",
                xhr_headers("app.example.io", Authorization="Bearer " + _user_token(i, p)),
                js(body), JSON))


def coupon_create(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"code": ["SPRING-15", "FREESHIP>50", "VIP_2024!", "WELCOME10"][i % 4],
            "type": "percentage" if i % 2 == 0 else "fixed_amount",
            "value": [15, 5, 25, 10][i % 4], "minimum_subtotal": 50.0,
            "starts_at": _iso(i), "ends_at": None, "usage_limit": 1000, "once_per_customer": True,
            "applies_to": {"collections": ["summer-2024", "rock-and-roll"], "exclude_sale": True},
            "description": "Internal: for the newsletter (don't share on coupon sites!)"}
    return ("admin: create a discount code",
            req("POST", "/api/v1/discounts", xhr_headers("admin.example.com"), js(body), JSON))


def inventory_adjust(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"adjustments": [{"sku": PRODUCTS[(i + k) % len(PRODUCTS)]["sku"],
                             "location_id": 61234 + k, "delta": [-2, 5, -1, 12][(i + k) % 4],
                             "reason": ["damaged", "received", "correction", "returned"][
                                 (i + k) % 4]} for k in range(3)],
            "note": "Cycle count 2024-W45; bin A-12 → A-14", "user": p["email"]}
    return ("warehouse: batch inventory adjustments",
            req("POST", "/api/v1/inventory/adjustments", api_headers(
                "api.shop.example.com", ua="WarehouseScanner/3.4 (Android 14)",
                token=_user_token(i, p)), py_json(body), JSON))


def refund(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    body = {"order_id": 10480 + i, "reason": ["Item arrived damaged (photo in ticket "
                                              "#5521)", "Wrong size: sent 6\" instead of 1'",
                                              "Customer changed mind — within 30 days",
                                              "Duplicate charge"][i % 4],
            "refund_line_items": [{"line_item_id": 1100000 + i, "quantity": 1,
                                   "restock_type": "return"}],
            "shipping": {"full_refund": i % 2 == 0}, "notify": True,
            "transactions": [{"parent_id": 5500000 + i, "amount": str(pr["price"]),
                              "kind": "refund", "gateway": "stripe"}]}
    return ("admin: refund with a reason",
            req("POST", f"/admin/api/2024-10/orders/{10480 + i}/refunds.json",
                xhr_headers("admin.example.com"), js(body), JSON))


def message_send(i: int, p: Person, pr: Product) -> tuple[str, dict[str, Any]]:
    texts = ["hey!! are we still on for 7:30? 🍕", "lol yes -- bring the \"good\" board "
             "games ;) & snacks", "running ~10 min late, sorry!! 🚇", "k see u at Luigi's "
             "(the one on 5th & Main)"]
    body = {"conversation_id": uid(f"conv{i % 2}"), "client_msg_id": uid(f"msg{i}"),
            "text": texts[i % 4], "reply_to": uid(f"msg{i - 1}") if i else None,
            "attachments": [], "mentions": [] if i % 2 else [{"user_id": uid("friend"),
                                                             "offset": 0, "length": 3}],
            "sent_at": _iso(i, 18, 40 + i)}
    return ("messaging app: chat message with emoji",
            req("POST", "/api/v1/messages", api_headers("chat.example.com",
                ua="ExampleChat/5.3.1 (iPhone; iOS 18.1; Scale/3.00)",
                token=_user_token(i, p)), js(body), JSON))


VARIANTS = 3  # rows per builder: each request shape with three customers and products

BUILDERS: list[Builder] = [
    order_create, cart_add, customer_patch, avatar_upload, product_create, segment_track,
    segment_batch, ga4_collect, llm_chat, slack_post, mail_send, login, token_refresh,
    webauthn_finish, jira_issue, calendar_event, crm_contact, invoice, subscription,
    webhook_endpoint, telemetry, geojson, notification_settings, flags_evaluate, review,
    support_ticket, team_invite, payment_intent, shipping_rates, document_save, form_response,
    task_create, sentry_event, rum_beacon, translations, booking, export_job, note_markdown,
    preferences, coupon_create, inventory_adjust, refund, message_send,
]


def tests() -> list[dict[str, Any]]:
    out = []
    for b_index, build in enumerate(BUILDERS):
        for i in range(VARIANTS):
            person = PEOPLE[(b_index * 3 + i) % len(PEOPLE)]
            product = PRODUCTS[(b_index + i) % len(PRODUCTS)]
            desc, inp = build(i, person, product)
            out.append(benign(inp, KIND, f"{desc} [{build.__name__} #{i + 1}]",
                              "placement:json"))
    return out


def main() -> None:
    write("benign/0001-api-json.yaml", 1, "Benign: JSON API calls of SaaS and e-commerce "
          "back ends (SPA fetches, SDKs, analytics, webhooks setup)", tests())


if __name__ == "__main__":
    main()
