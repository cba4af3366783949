"""Benign traffic: unusual but legitimate headers, and the requests that carry them.

Writes ``benign/0008-unusual-headers.yaml`` (kind ``unusual-headers``): distributed
tracing (traceparent, tracestate, baggage, B3, vendor headers), authorization
schemes (Bearer JWTs, AWS SigV4, Digest, OAuth 1.0a, DPoP, Negotiate, HTTP
message signatures), conditional and range requests, CORS preflights, webhooks
with signature headers (Stripe, GitHub, GitLab, Shopify, Slack, Twilio, PayPal,
Svix, Discord, Zoom...), proxy and CDN headers, content negotiation and client
hints, crawlers and non-browser clients, and the less common request body types
browsers and services send (CSP reports, NDJSON, SCIM, JSON-RPC, OTLP).
"""

# Real payloads have typographic dashes: keep them.
# ruff: noqa: RUF001

from __future__ import annotations

import base64
from typing import Any

from benign_lib import (
    CHROME_SEC_CH_UA,
    CHROME_UA,
    FIREFOX_UA,
    IPHONE_UA,
    SAFARI_UA,
    api_headers,
    basic,
    benign,
    form,
    hexid,
    hmac_b64,
    hmac_hex,
    js,
    jwt,
    py_json,
    req,
    site_headers,
    token,
    uid,
    xhr_headers,
)
from common import write

KIND = "unusual-headers"
JSON = "application/json"
T0 = 1733000000
Case = tuple[str, dict[str, Any]]


def _trace(n: int) -> tuple[str, str]:
    return hexid(f"trace{n}", 32), hexid(f"span{n}", 16)


def tracing() -> list[Case]:
    out: list[Case] = []
    tid, sid = _trace(1)
    out.append(("W3C traceparent + tracestate from an instrumented service", req(
        "GET", "/api/v1/orders/10482", api_headers(
            ua="opentelemetry-instrumentation-requests/0.48b0 python-requests/2.32.3",
            token=token("svc1", 40), traceparent=f"00-{tid}-{sid}-01",
            tracestate="rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,dd=s:1;o:rum;t.dm:-1"))))
    tid, sid = _trace(2)
    out.append(("W3C baggage with URL-encoded values", req(
        "POST", "/api/v1/payments", api_headers(
            ua="Go-http-client/1.1", token=token("svc2", 40), traceparent=f"00-{tid}-{sid}-00",
            baggage="userId=alice,serverNode=DF%2028,isProduction=false,"
                    "tenant=acme%20%26%20co;ttl=60,checkout.step=payment"),
        py_json({"order_id": 10482, "amount": 2599}), JSON)))
    tid, sid = _trace(3)
    out.append(("Zipkin B3 multi-header propagation", req(
        "GET", "/inventory/sku/FLAG-UJ-3X5", api_headers(
            "inventory.internal:8080", ua="okhttp/4.12.0", X_B3_TraceId=tid, X_B3_SpanId=sid,
            X_B3_ParentSpanId=hexid("parent3", 16), X_B3_Sampled="1",
            X_Request_Id=uid("req3")))))
    tid, sid = _trace(4)
    out.append(("Zipkin B3 single header", req("GET", "/api/v1/catalog?page=3", api_headers(
        "catalog.internal", ua="Java-http-client/21.0.5", b3=f"{tid}-{sid}-1-{hexid('p4', 16)}"))))
    out.append(("Google Cloud trace context", req("GET", "/healthz?full=1", api_headers(
        "svc.example.run.app", ua="GoogleHC/1.0",
        X_Cloud_Trace_Context=f"{hexid('gct', 32)}/1234567890123456789;o=1"))))
    out.append(("AWS X-Ray trace id from a load balancer", req("GET", "/api/v1/cart", {
        **xhr_headers("shop.example.com"),
        "X-Amzn-Trace-Id": f"Root=1-{T0:08x}-{hexid('xray', 24)};Parent={hexid('xp', 16)};"
                           "Sampled=1;Lineage=a87bd80c:1|68fd508a:5"})))
    out.append(("Jaeger uber-trace-id", req("GET", "/api/v2/quotes?symbol=EURUSD", api_headers(
        "quotes.internal", ua="jaeger-client-go/2.30.0",
        uber_trace_id=f"{hexid('ut', 16)}:{hexid('us', 16)}:0:1",
        uberctx_tenant="acme"))))
    out.append(("Sentry browser SDK trace headers", req("POST", "/api/v1/orders", {
        **xhr_headers("shop.example.com"),
        "sentry-trace": f"{hexid('st', 32)}-{hexid('ss', 16)}-1",
        "baggage": f"sentry-environment=production,sentry-release=web%402.14.3,sentry-public_key="
                   f"{hexid('spk', 32)},sentry-trace_id={hexid('st', 32)},sentry-sample_rate=0.2,"
                   "sentry-transaction=%2Fcheckout%2F%5Bstep%5D,sentry-sampled=true"},
        js({"cart_id": uid("cart")}), JSON)))
    out.append(("Datadog propagation headers", req("GET", "/api/v1/recommendations?u=42", {
        **xhr_headers("shop.example.com"), "x-datadog-trace-id": "5782451262399841739",
        "x-datadog-parent-id": "2845029130383721521", "x-datadog-sampling-priority": "1",
        "x-datadog-origin": "rum", "x-datadog-tags": "_dd.p.dm=-1,_dd.p.tid=6739d36b00000000"})))
    nr = base64.b64encode(js({"v": [0, 1], "d": {"ty": "Browser", "ac": "1234567",
                                                  "ap": "601234567", "id": hexid("nr", 16),
                                                  "tr": hexid("nrt", 32), "ti": T0 * 1000}})
                          .encode()).decode()
    out.append(("New Relic browser agent header (base64 JSON)", req(
        "GET", "/api/v1/me", {**xhr_headers("app.example.io"), "newrelic": nr,
                              "traceparent": f"00-{hexid('nrt', 32)}-{hexid('nr', 16)}-01",
                              "tracestate": f"1234567@nr=0-1-1234567-601234567-"
                                            f"{hexid('nr', 16)}----{T0}000"})))
    out.append(("legacy .NET Request-Id and Correlation-Context", req(
        "GET", "/odata/Products?$top=20&$orderby=Name", api_headers(
            "erp.example.com", ua="Microsoft.OData.Client/7.21.3",
            Request_Id=f"|{hexid('rid', 32)}.{hexid('rs', 8)}.",
            Correlation_Context="tenant=contoso, region=westeurope"))))
    out.append(("request and correlation ids from an API gateway", req(
        "DELETE", "/api/v1/sessions/current", api_headers(
            ua="Kong/3.8.0", token=token("kong", 40), X_Request_ID=uid("kong-req"),
            X_Correlation_ID=uid("kong-corr"), X_Kong_Request_Id=hexid("kongid", 32)))))
    return out


def auth() -> list[Case]:
    out: list[Case] = []
    access = jwt({"iss": "https://auth.example.com/", "sub": "auth0|5f7c8ec7c33c6c004bbafe82",
                  "aud": ["https://api.example.com", "https://example.eu.auth0.com/userinfo"],
                  "iat": T0, "exp": T0 + 86400, "scope": "openid profile email read:orders",
                  "azp": token("azp", 32), "https://example.com/roles": ["admin", "billing"],
                  "https://example.com/org": {"id": "org_123", "name": "O'Brien & Daughters"}},
                 alg="RS256", kid="MjhFOUFCRkI3NzE5QzA5NUY4Nzk5RUIzRjA1")
    out.append(("Bearer JWT (RS256) with namespaced custom claims",
                req("GET", "/api/v1/orders?status=open", api_headers(
                    ua="axios/1.7.7", token=access))))
    out.append(("Bearer JWT (HS256) from a mobile app", req("GET", "/v2/feed?cursor=eyJpZCI6OTl9",
                api_headers(ua="okhttp/4.12.0", token=jwt({"uid": 42, "role": "user",
                                                            "exp": T0 + 900})))))
    out.append(("HTTP Basic credentials with symbols in the password", req(
        "GET", "/metrics", api_headers("monitor.example.com", ua="Prometheus/2.54.1",
                                       Authorization=basic("prometheus", "s3cr3t:with:colons&;"),
                                       Accept="application/openmetrics-text;version=1.0.0,"
                                              "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"))))
    date = "20241105T094213Z"
    out.append(("AWS Signature V4 with a session token", req(
        "GET", "/prod/items?limit=25&lastKey=eyJwayI6IjQyIn0%3D", api_headers(
            "abc123.execute-api.eu-west-1.amazonaws.example", ua="aws-sdk-js/3.682.0 "
            "ua/2.1 os/linux#6.1 lang/js md/nodejs#20.18.0 api/api-gateway#3.682.0",
            Authorization="AWS4-HMAC-SHA256 Credential=ASIAIOSFODNN7EXAMPLE/20241105/eu-west-1/"
                          "execute-api/aws4_request, SignedHeaders=host;x-amz-content-sha256;"
                          f"x-amz-date;x-amz-security-token, Signature={hexid('sig4', 64)}",
            X_Amz_Date=date, X_Amz_Content_Sha256="e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b"
                                                  "934ca495991b7852b855",
            X_Amz_Security_Token="IQoJb3JpZ2luX2VjE" + token("sts", 600) + "=="))))
    out.append(("HTTP Digest authentication", req("GET", "/dir/index.html", {
        "Host": "legacy.example.com", "User-Agent": "curl/8.5.0", "Accept": "*/*",
        "Authorization": 'Digest username="Mufasa", realm="http-auth@example.org", '
                         'uri="/dir/index.html", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4U'
                         'RrDPyOKUPA6aDK9+QE2LEac=", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5'
                         f'wv/H5QzzpXusqGemxURZJ", qop=auth, response="{hexid("dig", 64)}", '
                         'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'})))
    out.append(("OAuth 1.0a Authorization header", req(
        "POST", "/1.1/statuses/update.json", api_headers(
            "api.social.example.com", ua="OAuth gem v0.5.10",
            Authorization='OAuth oauth_consumer_key="xvz1evFS4wEEPTGEFPHBog", oauth_nonce="'
                          + hexid("nonce", 32) + '", oauth_signature="tnnArxj06cWHq44gCs1OSKk%2FjL'
                          'Y%3D", oauth_signature_method="HMAC-SHA1", oauth_timestamp="'
                          f'{T0}", oauth_token="370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb'
                          '", oauth_version="1.0"'),
        form([("status", "Hello Ladies + Gentlemen, a signed OAuth request!"),
              ("include_entities", "true")]), "application/x-www-form-urlencoded")))
    dpop = jwt({"jti": uid("dpop"), "htm": "GET", "htu": "https://api.example.com/v1/accounts",
                "iat": T0}, alg="ES256")
    out.append(("DPoP-bound access token", req("GET", "/v1/accounts", api_headers(
        ua="dpop-client/1.0", Authorization="DPoP " + token("dpopat", 80), DPoP=dpop))))
    out.append(("API key headers of a third-party API", req(
        "GET", "/v1/weather/forecast?lat=53.3498&lon=-6.2603&units=metric", api_headers(
            "api.weather.example.com", ua="WeatherKit/2.3 (iPhone; iOS 18.1)",
            X_API_Key=token("wx", 32), X_RapidAPI_Host="weather.p.rapidapi.example"))))
    out.append(("Kerberos Negotiate token from a domain-joined browser", req(
        "GET", "/intranet/", site_headers(
            "intranet.corp.example.com", ua=CHROME_UA,
            Authorization="Negotiate YIIHxgYGKwYBBQUCoIIHujCCB7agMDAuBgkqhkiC9xIBAgIGCSqGSIb3EgE"
                          "CAgYKKwYBBAGCNwICHgYKKwYBBAGCNwICCqKCB4AEggd8" + token("krb", 400)))))
    out.append(("Anthropic/OpenAI-style API headers", req(
        "POST", "/v1/messages", api_headers(
            "llm.example.com", ua="Anthropic/Python 0.39.0", X_Api_Key="sk-ant-api03-"
            + token("ant", 93) + "AA", Anthropic_Version="2023-06-01",
            Anthropic_Beta="prompt-caching-2024-07-31"),
        py_json({"model": "claude-3-5-sonnet-latest", "max_tokens": 1024, "messages": [
            {"role": "user", "content": "Summarise: \"Order #10482 arrived damaged -- the box "
                                        "was crushed & the mug's handle snapped off.\""}]}),
        JSON)))
    sig_input = ('sig1=("@method" "@target-uri" "content-digest" "content-type");'
                 f'created={T0};keyid="test-key-ed25519"')
    body = py_json({"hello": "world"})
    out.append(("HTTP Message Signatures (RFC 9421) with Content-Digest", req(
        "POST", "/foo?param=Value&Pet=dog", api_headers(
            "example.com", ua="httpsig-client/1.0",
            Content_Digest="sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrI"
                           "iYllu7BNNyealdVLvRwEmTHWXvJwew==:",
            Signature_Input=sig_input,
            Signature=f"sig1=:{base64.b64encode(bytes.fromhex(hexid('ed', 64)) * 2).decode()}:"),
        body, JSON)))
    note = js({"@context": "https://www.w3.org/ns/activitystreams", "id":
               "https://social.example/users/zoe/statuses/113434/activity", "type": "Create",
               "actor": "https://social.example/users/zoe", "to": [
                   "https://www.w3.org/ns/activitystreams#Public"],
               "object": {"type": "Note", "content": "<p>Just tried the new <a href=\"https://"
                          "shop.example.com/\" rel=\"nofollow noopener\">shop</a> -- love it! "
                          "<a href=\"https://social.example/tags/rocknroll\" class=\"mention "
                          "hashtag\">#<span>rocknroll</span></a></p>"}})
    out.append(("ActivityPub inbox delivery with a draft-cavage HTTP signature", req(
        "POST", "/users/shop/inbox", {
            "Host": "fedi.example.com", "User-Agent": "Mastodon/4.3.1 (http.rb/5.2.0; "
                                                      "+https://social.example/)",
            "Date": "Tue, 05 Nov 2024 09:42:13 GMT",
            "Digest": "SHA-256=" + base64.b64encode(bytes.fromhex(hexid(note, 64))).decode(),
            "Signature": 'keyId="https://social.example/users/zoe#main-key",algorithm='
                         '"rsa-sha256",headers="(request-target) host date digest content-type",'
                         'signature="' + base64.b64encode(bytes.fromhex(hexid("ap", 64)) * 8)
                         .decode() + '"', "Accept-Encoding": "gzip"},
        note, 'application/activity+json')))
    return out


def conditional() -> list[Case]:
    out: list[Case] = []
    out.append(("If-None-Match with a weak ETag", req("GET", "/api/v1/products?page=1", {
        **xhr_headers("shop.example.com"), "If-None-Match": 'W/"5f3a-1Vq3nAmMYc0Ih3yS9Q3o8gYBZ6k"'
    })))
    out.append(("If-None-Match with a list of ETags", req("GET", "/assets/app.css", site_headers(
        "www.example.com", accept="text/css,*/*;q=0.1",
        If_None_Match='"a1b2c3", W/"d4e5f6", "0815-ff"',
        If_Modified_Since="Tue, 05 Nov 2024 09:42:13 GMT"))))
    out.append(("If-Match for optimistic concurrency on PUT", req(
        "PUT", "/api/v1/documents/" + uid("doc1"), {
            **xhr_headers("notes.example.com"), "If-Match": '"v17-' + hexid("v17", 12) + '"'},
        js({"title": "Q3 planning", "body": "Updated agenda…"}), JSON)))
    out.append(("If-Unmodified-Since on DELETE", req(
        "DELETE", "/api/v1/files/" + uid("f9"), api_headers(
            ua="rclone/v1.68.1", token=token("rc", 40),
            If_Unmodified_Since="Mon, 04 Nov 2024 23:59:59 GMT"))))
    out.append(("If-None-Match: * on create-if-absent PUT", req(
        "PUT", "/bucket/exports/orders_2024-11.csv", api_headers(
            "storage.example.com", ua="aws-cli/2.18.0 Python/3.12.6 Linux/6.8.0",
            If_None_Match="*", Content_MD5="XrY7u+Ae7tCTyyK7j1rNww=="),
        "id,total\n10482,61.48\n10483,18.50\n", "text/csv")))
    out.append(("Range: first kilobyte of a log", req(
        "GET", "/logs/app-2024-11-05.log", api_headers(
            "files.example.com", ua="curl/8.5.0", Range="bytes=0-1023"))))
    out.append(("Range: resume a download (open-ended)", req(
        "GET", "/downloads/Example-Setup-2.14.3.exe", site_headers(
            "download.example.com", ua=FIREFOX_UA, Range="bytes=52428800-",
            If_Range='"6a3f9c-5e8b1a2c3d4e"'))))
    out.append(("Range: suffix (last 500 bytes)", req("GET", "/video/trailer.mp4", api_headers(
        "cdn.example.com", ua="Lavf/61.1.100", Accept="*/*", Range="bytes=-500"))))
    out.append(("Range: several ranges at once", req("GET", "/docs/manual.pdf", api_headers(
        "docs.example.com", ua="pdf.js/4.7.76", Range="bytes=0-1023, 4096-8191, 65536-"))))
    out.append(("Safari media probe: Range bytes=0-1 with playback session id", req(
        "GET", "/media/episode-01.mp4", {
            "Host": "media.example.com", "User-Agent": IPHONE_UA, "Accept": "*/*",
            "Accept-Language": "en-US,en;q=0.9", "Range": "bytes=0-1",
            "X-Playback-Session-Id": uid("pb").upper(), "Accept-Encoding": "identity",
            "Referer": "https://www.example.com/podcast/1"})))
    out.append(("hard reload: Cache-Control no-cache + Pragma", req("GET", "/", site_headers(
        "www.example.com", Cache_Control="no-cache", Pragma="no-cache"))))
    out.append(("Cache-Control request directives from a caching client", req(
        "GET", "/api/v1/rates?base=EUR", api_headers(
            ua="Varnish/7.6", Cache_Control="max-age=0, stale-if-error=86400, "
                                            "stale-while-revalidate=60"))))
    return out


def cors() -> list[Case]:
    out: list[Case] = []
    preflights = [
        ("PUT", "authorization,content-type", "https://app.example.io"),
        ("DELETE", "authorization,x-csrf-token,x-requested-with", "https://admin.example.com"),
        ("PATCH", "content-type,if-match,traceparent,tracestate", "https://notes.example.com"),
        ("POST", "content-type,x-api-key,idempotency-key,x-stainless-lang,x-stainless-os,"
                 "x-stainless-runtime,x-stainless-package-version", "http://localhost:3000"),
        ("POST", "apollo-require-preflight,apollographql-client-name,"
                 "apollographql-client-version,content-type", "https://studio.example.dev"),
        ("GET", "authorization,sentry-trace,baggage", "https://shop.example.com"),
        ("POST", "content-type,x-amz-date,x-amz-security-token,x-amz-user-agent,"
                 "amz-sdk-invocation-id,amz-sdk-request", "https://console.example.com"),
        ("PUT", "content-type,content-md5,x-ms-blob-type,x-ms-version,x-ms-date",
         "https://upload.example.com"),
    ]
    for k, (method, headers, origin) in enumerate(preflights):
        ua = [CHROME_UA, FIREFOX_UA, SAFARI_UA][k % 3]
        h = {"Host": "api.example.com", "User-Agent": ua, "Accept": "*/*",
             "Accept-Language": "en-US,en;q=0.9", "Accept-Encoding": "gzip, deflate, br, zstd",
             "Access-Control-Request-Method": method,
             "Access-Control-Request-Headers": headers, "Origin": origin,
             "Referer": origin + "/", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-site"
             if origin.endswith("example.com") else "cross-site", "Sec-Fetch-Dest": "empty"}
        out.append((f"CORS preflight for {method} with {headers.count(',') + 1} request headers",
                    req("OPTIONS", f"/v1/resources/{k + 1}?expand=owner", h)))
    out.append(("CORS preflight with Private Network Access", req("OPTIONS", "/api/status", {
        "Host": "printer.local.example", "User-Agent": CHROME_UA, "Accept": "*/*",
        "Access-Control-Request-Method": "GET", "Access-Control-Request-Private-Network": "true",
        "Origin": "https://app.example.io", "Sec-Fetch-Mode": "cors",
        "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "empty"})))
    out.append(("OPTIONS * from a proxy (server capabilities)", req("OPTIONS", "*", {
        "Host": "api.example.com", "User-Agent": "Apache-HttpClient/5.3 (Java/17.0.12)",
        "Max-Forwards": "0"})))
    return out


def _stripe_sig(body: str) -> str:
    return f"t={T0},v1={hmac_hex('whsec_test', f'{T0}.{body}')},v0={hexid('v0' + body, 64)}"


def webhooks() -> list[Case]:
    out: list[Case] = []
    body = py_json({"id": "evt_1QHx2aLkdIwHu7ixJ3", "object": "event", "api_version":
                    "2024-10-28.acacia", "created": T0, "type": "payment_intent.succeeded",
                    "livemode": False, "pending_webhooks": 1, "data": {"object": {
                        "id": "pi_3QHx2aLkdIwHu7ix0", "object": "payment_intent", "amount": 2599,
                        "currency": "eur", "description": "Order #10482 – Rock & Roll Tee (M)",
                        "metadata": {"order_id": "10482"}, "receipt_email":
                        "siobhan.obrien@example.ie", "status": "succeeded",
                        "shipping": {"name": "Siobhán O'Brien", "address": {
                            "line1": "14 St. Stephen's Green", "city": "Dublin"}}}},
                    "request": {"id": "req_" + token("sreq", 14), "idempotency_key":
                                uid("sidem")}})
    out.append(("Stripe webhook with Stripe-Signature", req("POST", "/webhooks/stripe", {
        "Host": "shop.example.com", "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        "Accept": "*/*; q=0.5, application/xml", "Cache-Control": "no-cache",
        "Stripe-Signature": _stripe_sig(body)}, body, "application/json; charset=utf-8")))
    body = js({"ref": "refs/heads/main", "before": hexid("b", 40), "after": hexid("a", 40),
               "repository": {"id": 123456789, "full_name": "example/shop",
                              "html_url": "https://github.example/example/shop"},
               "pusher": {"name": "priya-r", "email": "priya_r@example.in"},
               "commits": [{"id": hexid("c1", 40), "message":
                            "Fix XSS in search results: escape the query before echoing it\n\n"
                            "The template printed {q} raw; a query like <b>union</b> rendered "
                            "bold. Use |e and add a test.", "timestamp":
                            "2024-11-05T10:42:13+01:00", "added": [], "removed": [],
                            "modified": ["templates/search.html", "tests/test_search.py"]},
                           {"id": hexid("c2", 40), "message": "SQL: use parameters in "
                            "report export (no more f-strings in cursor.execute)",
                            "modified": ["app/reports.py"]}]})
    out.append(("GitHub push webhook with X-Hub-Signature-256", req(
        "POST", "/hooks/github", {
            "Host": "ci.example.com", "User-Agent": "GitHub-Hookshot/a1b2c3d", "Accept": "*/*",
            "X-GitHub-Event": "push", "X-GitHub-Delivery": uid("ghd"),
            "X-GitHub-Hook-ID": "471112233", "X-GitHub-Hook-Installation-Target-ID": "123456789",
            "X-GitHub-Hook-Installation-Target-Type": "repository",
            "X-Hub-Signature": "sha1=" + hexid("sha1" + body, 40),
            "X-Hub-Signature-256": "sha256=" + hmac_hex("gh-secret", body)},
        body, JSON)))
    body = js({"action": "opened", "number": 4471, "pull_request": {
        "title": "auth: OIDC login (PKCE) + refresh", "body": "Closes #4402.\n\n- [x] tests\n"
        "- [ ] docs\n\n```diff\n- if token == None:\n+ if token is None:\n```",
        "head": {"ref": "feature/oidc"}, "base": {"ref": "main"}, "draft": False}})
    out.append(("GitHub pull_request webhook with markdown and a diff", req(
        "POST", "/hooks/github", {
            "Host": "ci.example.com", "User-Agent": "GitHub-Hookshot/a1b2c3d", "Accept": "*/*",
            "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": uid("ghd2"),
            "X-Hub-Signature-256": "sha256=" + hmac_hex("gh-secret", body)}, body, JSON)))
    body = js({"object_kind": "push", "event_name": "push", "ref": "refs/heads/release/2.14",
               "user_name": "Tomasz Wiśniewski", "project": {"path_with_namespace":
                                                             "shop/web"},
               "commits": [{"message": "Bump version to 2.14.3 [skip ci]",
                            "author": {"name": "Tomasz Wiśniewski"}}], "total_commits_count": 1})
    out.append(("GitLab push hook with X-Gitlab-Token", req("POST", "/hooks/gitlab", {
        "Host": "ci.example.com", "User-Agent": "GitLab/17.5.1-ee",
        "X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": token("glt", 20),
        "X-Gitlab-Instance": "https://gitlab.example.com", "X-Gitlab-Event-UUID": uid("gle"),
        "X-Gitlab-Webhook-UUID": uid("glw"), "Idempotency-Key": uid("gli")}, body, JSON)))
    body = js({"id": 5801234567890, "email": "dwayne.dangelo@example.com", "total_price":
               "61.48", "currency": "USD", "note": "Ring twice; the bell's broken.",
               "line_items": [{"title": "Union Jack Flag 3'x5' (Nylon)", "quantity": 1,
                               "price": "18.50", "properties": [{"name": "Engraving",
                                                                 "value": "J & M"}]}],
               "shipping_address": {"address1": "1600 Amphitheatre Pkwy, Apt. #4B",
                                    "city": "Mountain View", "zip": "94043-1351"}})
    out.append(("Shopify orders/create webhook", req("POST", "/webhooks/shopify/orders-create", {
        "Host": "erp.example.com", "User-Agent": "Shopify-Captain-Hook", "Accept": "*/*",
        "X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": hmac_b64("shp", body),
        "X-Shopify-Shop-Domain": "example-shop.myshopify.com",
        "X-Shopify-API-Version": "2024-10", "X-Shopify-Webhook-Id": uid("shw"),
        "X-Shopify-Triggered-At": "2024-11-05T09:42:13.456Z",
        "X-Shopify-Event-Id": uid("she")}, body, JSON)))
    body = form([("token", token("slk", 24)), ("team_id", "T0001"), ("team_domain", "example"),
                 ("channel_id", "C2147483705"), ("channel_name", "deploys"),
                 ("user_id", "U2147483697"), ("user_name", "priya"), ("command", "/deploy"),
                 ("text", "web@v2.14.3 --env=prod --notify=#releases \"hotfix: checkout\""),
                 ("response_url", "https://hooks.slack.example/commands/1234/5678"),
                 ("trigger_id", "13345224609.738474920.8088930838d88f008e0")])
    out.append(("Slack slash command with X-Slack-Signature", req("POST", "/slack/commands", {
        "Host": "bots.example.com", "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        "Accept": "application/json,*/*", "X-Slack-Request-Timestamp": str(T0),
        "X-Slack-Signature": "v0=" + hmac_hex("slack", f"v0:{T0}:{body}")},
        body, "application/x-www-form-urlencoded")))
    payload = js({"type": "block_actions", "user": {"id": "U2147483697", "name": "priya"},
                  "actions": [{"action_id": "ack", "value": "ack_10482", "type": "button",
                               "text": {"type": "plain_text", "text": "Acknowledge"}}],
                  "message": {"text": ":tada: New order *#10482* — <https://admin.example.com"
                                      "/orders/10482|view order>"},
                  "response_url": "https://hooks.slack.example/actions/T0001/1234/abcd"})
    body = form([("payload", payload)])
    out.append(("Slack interactivity: JSON inside a form field", req(
        "POST", "/slack/interactions", {
            "Host": "bots.example.com", "User-Agent": "Slackbot 1.0 (+https://api.slack.com/"
                                                      "robots)",
            "X-Slack-Request-Timestamp": str(T0 + 5),
            "X-Slack-Signature": "v0=" + hmac_hex("slack", f"v0:{T0 + 5}:{body}")},
        body, "application/x-www-form-urlencoded")))
    body = form([("ToCountry", "US"), ("SmsMessageSid", "SM" + hexid("sms", 32)),
                 ("NumMedia", "0"), ("From", "+15558675310"), ("To", "+15017122661"),
                 ("Body", "STOP? no wait -- where's my order #10482?? 😅 it's been 5 days"),
                 ("FromCity", "SAN FRANCISCO"), ("FromState", "CA"), ("ApiVersion",
                                                                      "2010-04-01")])
    out.append(("Twilio inbound SMS webhook with X-Twilio-Signature", req("POST", "/sms/inbound", {
        "Host": "support.example.com", "User-Agent": "TwilioProxy/1.1",
        "Accept": "*/*", "X-Twilio-Signature": hmac_b64("tw", body),
        "I-Twilio-Idempotency-Token": uid("twi")}, body, "application/x-www-form-urlencoded")))
    body = js([{"email": "zoe@angstrom.example.se", "timestamp": T0, "event": "open",
                "sg_event_id": token("sge", 22), "sg_message_id": token("sgm", 22) + ".filter",
                "useragent": "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 "
                             "(via ggpht.com GoogleImageProxy)", "ip": "66.249.84.1"},
               {"email": "mj.nunez@example.es", "timestamp": T0 + 9, "event": "click",
                "url": "https://shop.example.com/sale?utm_source=newsletter&utm_medium=email"}])
    out.append(("SendGrid event webhook (JSON array) with ECDSA signature", req(
        "POST", "/webhooks/sendgrid", {
            "Host": "mail-events.example.com", "User-Agent": "SendGrid Event API",
            "X-Twilio-Email-Event-Webhook-Signature": "MEUCIQC" + token("sgsig", 80) + "==",
            "X-Twilio-Email-Event-Webhook-Timestamp": str(T0)}, body, JSON)))
    body = js({"type": "user.created", "object": "event", "data": {
        "id": "user_" + token("ck", 27), "first_name": "Zoë", "last_name": "Ångström",
        "email_addresses": [{"email_address": "zoe@angstrom.example.se"}],
        "image_url": "https://img.clerk.example/eyJ0eXBlIjoicHJveHkifQ", "created_at": T0}})
    out.append(("Svix / Standard Webhooks signature headers", req("POST", "/api/webhooks/clerk", {
        "Host": "app.example.io", "User-Agent": "Svix-Webhooks/1.45.0",
        "svix-id": "msg_" + token("svx", 27), "svix-timestamp": str(T0),
        "svix-signature": "v1," + hmac_b64("svix", body) + " v1,"
                          + hmac_b64("svix-old", body)}, body, JSON)))
    body = js({"id": "WH-7Y7254563A4550640-06E01C3A4S1923130", "event_type":
               "PAYMENT.CAPTURE.COMPLETED", "resource": {"amount": {"currency_code": "USD",
                                                                    "value": "61.48"},
                                                         "custom_id": "order-10482"}})
    out.append(("PayPal webhook transmission headers", req("POST", "/webhooks/paypal", {
        "Host": "shop.example.com", "User-Agent": "PayPal/AUHD-214.0-58843258",
        "Paypal-Transmission-Id": uid("ppt"), "Paypal-Transmission-Time":
        "2024-11-05T09:42:13Z", "Paypal-Transmission-Sig": token("pps", 340) + "==",
        "Paypal-Auth-Algo": "SHA256withRSA", "Paypal-Cert-Url":
        "https://api.paypal.example/v1/notifications/certs/CERT-360caa42-fca2a594-1d93a270"},
        body, JSON)))
    body = js({"type": 2, "application_id": "1234567890123456789", "guild_id": "987654321",
               "data": {"name": "order", "options": [{"name": "id", "value": "10482"}]},
               "member": {"user": {"username": "rock_n_roll_fan"}}, "token": token("dt", 180)})
    out.append(("Discord interaction with Ed25519 signature headers", req(
        "POST", "/discord/interactions", {
            "Host": "bots.example.com", "User-Agent": "Discord-Interactions/1.0 "
                                                      "(+https://discord.com)",
            "X-Signature-Ed25519": hexid("ed1", 64) + hexid("ed2", 64),
            "X-Signature-Timestamp": str(T0)}, body, JSON)))
    body = js({"event": "meeting.ended", "event_ts": T0 * 1000, "payload": {
        "object": {"topic": "Q3 planning — budget & hiring", "duration": 58}}})
    out.append(("Zoom webhook signature headers", req("POST", "/zoom/events", {
        "Host": "bots.example.com", "User-Agent": "Zoom Marketplace/1.0a",
        "x-zm-request-timestamp": str(T0), "x-zm-signature": "v0=" + hmac_hex(
            "zoom", f"v0:{T0}:{body}"), "x-zm-trackingid": "v=2.0;clid=us06;rid=" + token(
            "zm", 20)}, body, JSON)))
    body = js({"action": "create", "type": "Issue", "data": {
        "title": "Search: \"drop leaf\" returns drop ceiling tiles", "priority": 2,
        "labels": [{"name": "search"}]}, "url": "https://linear.example/acme/issue/SHOP-881"})
    out.append(("Linear webhook with Linear-Signature", req("POST", "/hooks/linear", {
        "Host": "bots.example.com", "User-Agent": "Linear-Webhook",
        "Linear-Delivery": uid("lin"), "Linear-Event": "Issue",
        "Linear-Signature": hmac_hex("linear", body)}, body, JSON)))
    body = js({"push": {"changes": [{"new": {"name": "main", "type": "branch"},
                                     "commits": [{"message": "Merge branch 'hotfix/o-brien' "
                                                             "into main"}]}]},
               "repository": {"full_name": "example/shop"}})
    out.append(("Bitbucket repo:push webhook", req("POST", "/hooks/bitbucket", {
        "Host": "ci.example.com", "User-Agent": "Bitbucket-Webhooks/2.0",
        "X-Event-Key": "repo:push", "X-Hook-UUID": uid("bbh"), "X-Request-UUID": uid("bbr"),
        "X-Attempt-Number": "1"}, body, JSON)))
    return out


def proxies() -> list[Case]:
    out: list[Case] = []
    page = site_headers("shop.example.com", ua=CHROME_UA)
    out.append(("X-Forwarded-* from a chain of proxies", req("GET", "/collections/all", {
        **page, "X-Forwarded-For": "203.0.113.7, 198.51.100.23, 10.0.0.12",
        "X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example.com",
        "X-Forwarded-Port": "443", "X-Real-IP": "203.0.113.7"})))
    out.append(("RFC 7239 Forwarded with an IPv6 node and port", req("GET", "/products/union-jack",
        {**page, "Forwarded": 'for=192.0.2.60;proto=https;by=203.0.113.43, '
                              'for="[2001:db8:cafe::17]:4711";host=shop.example.com'})))
    out.append(("Cloudflare edge headers (CF-Visitor is JSON)", req("GET", "/", {
        **page, "CF-Connecting-IP": "2001:db8:85a3::8a2e:370:7334", "CF-IPCountry": "IE",
        "CF-Ray": "8dd4e3f1a2b3c4d5-DUB", "CF-Visitor": '{"scheme":"https"}',
        "CDN-Loop": "cloudflare; loops=1", "X-Forwarded-Proto": "https",
        "True-Client-IP": "2001:db8:85a3::8a2e:370:7334"})))
    out.append(("Akamai and Fastly client IP headers", req("GET", "/api/v1/geo", {
        **xhr_headers("shop.example.com"), "True-Client-IP": "198.51.100.77",
        "Akamai-Origin-Hop": "2", "Fastly-Client-IP": "198.51.100.77", "Fastly-FF":
        "cache-dub4321-DUB, cache-lhr7380-LHR", "Fastly-SSL": "1",
        "Via": "1.1 varnish, 1.1 varnish"})))
    out.append(("CloudFront viewer headers", req("GET", "/checkout", {
        **page, "Via": "2.0 8f3a2e1b0c9d8e7f6a5b4c3d2e1f0a9b.cloudfront.net (CloudFront)",
        "X-Amz-Cf-Id": token("cfid", 56) + "==", "CloudFront-Viewer-Country": "US",
        "CloudFront-Is-Mobile-Viewer": "false", "CloudFront-Is-Desktop-Viewer": "true",
        "CloudFront-Viewer-Address": "2001:db8::1:46532", "CloudFront-Forwarded-Proto":
        "https", "CloudFront-Viewer-City": "Mountain View",
        "CloudFront-Viewer-Time-Zone": "America/Los_Angeles"})))
    out.append(("Azure Front Door headers", req("GET", "/api/v1/health", {
        **api_headers(ua="Edge Health Probe"), "X-Azure-ClientIP": "203.0.113.9",
        "X-Azure-SocketIP": "203.0.113.9", "X-Azure-Ref": "0" + token("azref", 60),
        "X-Azure-FDID": uid("fdid"), "X-FD-HealthProbe": "1"})))
    out.append(("ingress-nginx / Envoy headers inside a cluster", req("GET", "/api/v1/cart", {
        **xhr_headers("shop.example.com"), "X-Original-Forwarded-For": "203.0.113.7",
        "X-Request-ID": hexid("ngx", 32), "X-Envoy-Expected-Rq-Timeout-Ms": "15000",
        "X-Envoy-Attempt-Count": "1", "X-Envoy-External-Address": "203.0.113.7",
        "X-Forwarded-Client-Cert": 'By=spiffe://cluster.local/ns/shop/sa/web;Hash='
                                   + hexid("xfcc", 64) + ';Subject="";URI=spiffe://cluster.'
                                   'local/ns/istio-system/sa/ingress'})))
    out.append(("Google Cloud load balancer via header", req("GET", "/", {
        **page, "Via": "1.1 google", "X-Cloud-Trace-Context": f"{hexid('gclb', 32)}/42;o=1",
        "X-Forwarded-For": "203.0.113.7, 34.117.0.1"})))
    return out


def _grpc_web_text(query: str, page_size: int) -> str:
    """A gRPC-Web text frame: base64 of flag, length and a message {1: query, 2: page_size}."""
    text = query.encode()
    message = bytes([0x0A, len(text)]) + text + bytes([0x10, page_size])
    return base64.b64encode(b"\x00" + len(message).to_bytes(4, "big") + message).decode()


def negotiation() -> list[Case]:
    out: list[Case] = []
    out.append(("GitHub-style vendor media type Accept", req("GET", "/repos/example/shop/readme",
        api_headers("api.code.example.com", ua="gh/2.61.0",
                    Accept="application/vnd.github.raw+json, application/vnd.github+json;q=0.9",
                    X_GitHub_Api_Version="2022-11-28"))))
    out.append(("JSON:API media type with sparse fieldsets and includes", req(
        "GET", "/api/articles?include=author,comments.author&fields%5Barticles%5D=title,body"
               "&fields%5Bpeople%5D=name&page%5Bsize%5D=10&sort=-created",
        api_headers(ua="ember-data/5.3", Accept="application/vnd.api+json"))))
    out.append(("ActivityPub Accept with a quoted profile parameter", req(
        "GET", "/users/zoe", api_headers(
            "social.example", ua="Mastodon/4.3.1 (http.rb/5.2.0; +https://fedi.example.com/)",
            Accept='application/activity+json, application/ld+json; profile="https://www.w3.'
                   'org/ns/activitystreams"'))))
    out.append(("very long Accept-Language list", req("GET", "/", site_headers(
        "www.example.com", lang="en-GB,en;q=0.9,en-US;q=0.8,fr-FR;q=0.7,fr;q=0.6,de-DE;q=0.5,"
                                "de;q=0.4,es-ES;q=0.3,es;q=0.2,pl;q=0.1,zh-Hant-TW;q=0.1,"
                                "ja;q=0.1,ar;q=0.1"))))
    out.append(("Accept-Charset and identity encoding from an old client", req("GET", "/feed.xml",
        {"Host": "blog.example.org", "User-Agent": "Feedly/1.0 (+http://www.feedly.com/fetcher."
                                                   "html; 3 subscribers; like FeedFetcher-Google)",
         "Accept": "application/atom+xml, application/rss+xml;q=0.9, application/xml;q=0.8, "
                   "text/xml;q=0.7, */*;q=0.1", "Accept-Charset": "utf-8, iso-8859-1;q=0.5",
         "Accept-Encoding": "identity", "If-Modified-Since": "Mon, 04 Nov 2024 12:00:00 GMT"})))
    out.append(("all the client hints a site asked for", req("GET", "/products/drop-leaf-table", {
        **site_headers("shop.example.com", ua=CHROME_UA), "sec-ch-ua": CHROME_SEC_CH_UA,
        "sec-ch-ua-mobile": "?0", "sec-ch-ua-platform": '"Windows"',
        "sec-ch-ua-platform-version": '"15.0.0"', "sec-ch-ua-arch": '"x86"',
        "sec-ch-ua-bitness": '"64"', "sec-ch-ua-model": '""', "sec-ch-ua-wow64": "?0",
        "sec-ch-ua-full-version-list": '"Google Chrome";v="131.0.6778.86", "Chromium";'
                                       'v="131.0.6778.86", "Not_A Brand";v="24.0.0.0"',
        "sec-ch-prefers-color-scheme": "dark", "sec-ch-prefers-reduced-motion": "reduce",
        "Device-Memory": "8", "Downlink": "10", "ECT": "4g", "RTT": "50",
        "Viewport-Width": "1440", "DPR": "2", "sec-ch-viewport-width": "1440",
        "sec-ch-dpr": "2"})))
    out.append(("privacy signals: DNT, Sec-GPC, Save-Data", req("GET", "/blog/", site_headers(
        "www.example.com", ua=FIREFOX_UA, DNT="1", Sec_GPC="1", Save_Data="on"))))
    out.append(("Android WebView: X-Requested-With is the app's package name", req(
        "GET", "/embedded/checkout?session=" + token("wv", 24), site_headers(
            "shop.example.com", ua="Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240905.003"
                                   "; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
                                   "Chrome/131.0.6778.81 Mobile Safari/537.36",
            X_Requested_With="com.example.shop.android"))))
    out.append(("Chrome's X-Client-Data variations header", req("GET", "/maps/api/js?key=AIza"
        + token("gm", 35) + "&libraries=places&callback=initMap", {
            "Host": "maps.example-apis.com", "User-Agent": CHROME_UA, "Accept": "*/*",
            "X-Client-Data": "CIe2yQEIo7bJAQipncoBCMHbygEIlKHLAQiFoM0BCO2QzgEI" + token("xcd", 40),
            "Referer": "https://shop.example.com/stores"})))
    out.append(("Prefer headers (OData paging, return=minimal)", req(
        "GET", "/odata/v4/Orders?$filter=Status%20eq%20'Open'%20and%20Total%20gt%20100"
               "&$select=Id,Total&$expand=Customer($select=Name)&$top=50",
        api_headers("erp.example.com", ua="PowerBI/2.136", token=token("pbi", 60),
                    Prefer="odata.maxpagesize=50, odata.include-annotations=\"*\"",
                    OData_Version="4.0", OData_MaxVersion="4.0"))))
    out.append(("X-HTTP-Method-Override on a POST (Google-style APIs)", req(
        "POST", "/calendar/v3/calendars/primary/events/" + token("ev", 26), api_headers(
            "calendar.example.com", ua="google-api-java-client/2.7.0",
            token="ya29." + token("g2", 150), X_HTTP_Method_Override="PATCH"),
        js({"summary": "1:1 Priya / Tomasz (moved)"}), JSON)))
    out.append(("Idempotency-Key and Prefer: return=representation", req(
        "POST", "/rest/v1/orders?select=id,total", api_headers(
            "db.example.supabase.co", ua="supabase-js/2.46.1",
            apikey=jwt({"role": "anon", "iss": "supabase"}), token=jwt({"role": "authenticated",
                                                                          "sub": uid("sb")}),
            Prefer="return=representation", Idempotency_Key=uid("idem-sb"),
            Accept_Profile="public", Content_Profile="public"),
        js({"customer_id": 42, "total": 61.48, "note": "gift"}), JSON)))
    out.append(("TLS early data marker from the edge", req("GET", "/", {
        **site_headers("www.example.com"), "Early-Data": "1"})))
    out.append(("TE: trailers from a gRPC-Web/HTTP client", req(
        "POST", "/example.shop.v1.Catalog/ListProducts", {
            "Host": "grpc.example.com", "User-Agent": "grpc-web-javascript/0.1",
            "Accept": "application/grpc-web-text", "X-Grpc-Web": "1", "X-User-Agent":
            "grpc-web-javascript/0.1", "TE": "trailers", "Origin": "https://shop.example.com"},
        _grpc_web_text("union jack", 20), "application/grpc-web-text")))
    return out


def clients() -> list[Case]:
    uas = [
        ("Googlebot smartphone", "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) "
                                 "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.85 "
                                 "Mobile Safari/537.36 (compatible; Googlebot/2.1; "
                                 "+http://www.google.com/bot.html)",
         "/products/drop-leaf-table", {"From": "googlebot(at)googlebot.com"}),
        ("Bingbot", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0;"
                    " +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
         "/sitemap.xml", {}),
        ("Slack link unfurler", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
         "/blogs/news/5-myths-about-drop-shipping", {}),
        ("Facebook link preview", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit"
                                  "_uatext.php)", "/products/union-jack-flag",
         {"Range": "bytes=0-524287"}),
        ("LinkedIn preview bot", "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient "
                                 "+http://www.linkedin.com)", "/careers/4471", {}),
        ("WhatsApp link preview", "WhatsApp/2.24.22.79 A", "/products/snake-plant-1ft", {}),
        ("Discord link embed", "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
         "/", {}),
        ("Apple link presentation", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) "
                                    "AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 "
                                    "Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
         "/pages/gift-guide", {}),
        ("AI crawler respecting robots.txt", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; "
                                             "compatible; GPTBot/1.2; +https://openai.com/gptbot)",
         "/robots.txt", {}),
        ("curl", "curl/8.5.0", "/api/v1/status", {"Accept": "*/*"}),
        ("Wget mirroring docs", "Wget/1.21.4", "/docs/manual.pdf", {"Accept": "*/*",
                                                                    "Accept-Encoding": "identity"}),
        ("Go HTTP client", "Go-http-client/2.0", "/api/v1/products?updated_since=2024-11-01T00%3A"
                                                 "00%3A00Z", {}),
        ("OkHttp in an Android app", "okhttp/4.12.0", "/api/v2/feed?page=2", {}),
        ("Android Dalvik default UA", "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/AP2A."
                                      "240905.003)", "/config/app.json", {}),
        ("iOS app via CFNetwork", "ExampleShop/1403 CFNetwork/1568.100.1 Darwin/24.0.0",
         "/api/v2/home?locale=en_IE", {"Accept": "*/*", "Accept-Language": "en-IE;q=1.0, "
                                                                            "ga-IE;q=0.9"}),
        ("Postman", "PostmanRuntime/7.42.0", "/api/v1/orders/10482",
         {"Postman-Token": uid("pm"), "Accept": "*/*", "Cache-Control": "no-cache"}),
        ("Insomnia", "insomnia/10.1.1", "/api/v1/orders?status=open&limit=5", {}),
        ("Node undici fetch", "node", "/api/v1/stock?sku=FLAG-UJ-3X5", {"Accept": "*/*",
                                                                        "sec-fetch-mode": "cors"}),
        ("python-httpx", "python-httpx/0.27.2", "/api/v1/rates?base=EUR&symbols=USD,GBP", {}),
        ("Kubernetes liveness probe", "kube-probe/1.31", "/healthz", {"Accept": "*/*"}),
        ("AWS ELB health checker", "ELB-HealthChecker/2.0", "/health", {}),
        ("uptime monitor", "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
         "/", {}),
        ("Prometheus scrape", "Prometheus/2.54.1", "/metrics", {
            "Accept": "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
                      "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0"
                      ";escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
            "X-Prometheus-Scrape-Timeout-Seconds": "10"}),
    ]
    out: list[Case] = []
    for name, ua, path, extra in uas:
        headers = {"Host": "shop.example.com", "User-Agent": ua,
                   "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                   "Accept-Encoding": "gzip, deflate, br", **extra}
        out.append((f"non-browser client: {name}", req("HEAD" if "ELB" in name else "GET", path,
                                                       headers)))
    return out


def bodies() -> list[Case]:
    out: list[Case] = []
    out.append(("browser CSP violation report (application/csp-report)", req(
        "POST", "/csp-report", {"Host": "shop.example.com", "User-Agent": FIREFOX_UA,
                                "Accept": "*/*", "Origin": "https://shop.example.com"},
        js({"csp-report": {"blocked-uri": "inline", "column-number": 17, "disposition":
                           "enforce", "document-uri": "https://shop.example.com/checkout?step=2",
                           "effective-directive": "script-src-elem", "line-number": 212,
                           "original-policy": "default-src 'self'; script-src 'self' "
                                              "'nonce-r4nd0m' https://js.stripe.example; "
                                              "report-uri /csp-report",
                           "referrer": "https://shop.example.com/cart", "script-sample":
                           "window.dataLayer = window.dataLayer || [];", "source-file":
                           "https://shop.example.com/checkout", "status-code": 200}}),
        "application/csp-report")))
    out.append(("Reporting API batch (application/reports+json)", req(
        "POST", "/reports", {"Host": "reports.example.com", "User-Agent": CHROME_UA,
                             "Origin": "https://shop.example.com"},
        js([{"age": 420, "type": "deprecation", "url": "https://shop.example.com/",
             "user_agent": CHROME_UA, "body": {"id": "UnloadHandler", "message":
                                               "Unload event listeners are deprecated and will "
                                               "be removed.", "sourceFile": "https://shop."
                                               "example.com/static/js/main.3f2a1b9c.js",
                                               "lineNumber": 1, "columnNumber": 9911}},
            {"age": 15, "type": "network-error", "url": "https://shop.example.com/api/v1/cart",
             "body": {"elapsed_time": 143, "method": "GET", "phase": "connection",
                      "protocol": "h2", "referrer": "", "sampling_fraction": 1.0,
                      "server_ip": "203.0.113.10", "status_code": 0, "type":
                      "tcp.timed_out"}}]),
        "application/reports+json")))
    bulk = "\n".join([js({"index": {"_index": "orders", "_id": "10482"}}),
                      js({"customer": "O'Brien", "total": 61.48, "note": "gift; don't bill "
                                                                         "shipping"}),
                      js({"delete": {"_index": "orders", "_id": "10311"}}),
                      js({"update": {"_index": "orders", "_id": "10483"}}),
                      js({"doc": {"status": "shipped"}})]) + "\n"
    out.append(("search engine bulk API (NDJSON)", req(
        "POST", "/_bulk?refresh=wait_for", api_headers(
        "search.internal:9200", ua="elasticsearch-py/8.15.1 (Python/3.12.7; elastic-transport/"
                                   "8.15.0)", Authorization="ApiKey " + base64.b64encode(
            f"{token('esid', 20)}:{token('eskey', 22)}".encode()).decode()),
        bulk, "application/x-ndjson")))
    out.append(("SCIM user provisioning from an identity provider", req(
        "POST", "/scim/v2/Users", api_headers(
            "app.example.io", ua="Okta SCIM Client 1.0.0", token=token("scim", 40)),
        js({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "userName": "siobhan.obrien@example.ie", "name": {"givenName": "Siobhán",
                                                              "familyName": "O'Brien"},
            "emails": [{"primary": True, "value": "siobhan.obrien@example.ie",
                        "type": "work"}], "active": True, "groups": [],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "R&D", "manager": {"value": "00u1ab2cd3EF4gh5IJ6k"}}}),
        "application/scim+json; charset=utf-8")))
    out.append(("JSON-RPC call to a blockchain node", req("POST", "/v3/" + hexid("infura"),
        api_headers("mainnet.rpc.example.io", ua="ethers/6.13.4"),
        js({"jsonrpc": "2.0", "id": 42, "method": "eth_call", "params": [
            {"to": "0x" + hexid("contract", 40), "data": "0x70a08231000000000000000000000000"
                                                         + hexid("addr", 40)}, "latest"]}),
        JSON)))
    out.append(("OpenTelemetry OTLP/HTTP JSON traces", req("POST", "/v1/traces", api_headers(
        "otel-collector.internal:4318", ua="OTel-OTLP-Exporter-JavaScript/0.54.2"),
        js({"resourceSpans": [{"resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "shop-web"}}]},
            "scopeSpans": [{"scope": {"name": "@opentelemetry/instrumentation-fetch"}, "spans": [
                {"traceId": hexid("ot", 32), "spanId": hexid("os", 16), "name": "HTTP GET",
                 "kind": 3, "startTimeUnixNano": str(T0 * 10**9), "endTimeUnixNano":
                 str(T0 * 10**9 + 143000000), "attributes": [
                     {"key": "http.url", "value": {"stringValue":
                                                   "https://shop.example.com/api/v1/search?q="
                                                   "select%20a%20size"}},
                     {"key": "http.status_code", "value": {"intValue": 200}}]}]}]}]}),
        JSON)))
    out.append(("CloudEvents structured mode", req("POST", "/events", api_headers(
        "broker.internal", ua="cloudevents-sdk-go/2.15.2"),
        js({"specversion": "1.0", "type": "com.example.order.created", "source":
            "/shop/orders", "id": uid("ce"), "time": "2024-11-05T09:42:13Z",
            "datacontenttype": "application/json", "data": {"orderId": 10482,
                                                            "customer": "O'Brien"}}),
        "application/cloudevents+json; charset=UTF-8")))
    out.append(("urlencoded body with an explicit charset", req("POST", "/newsletter", {
        **site_headers("www.example.com", ua=SAFARI_UA), "Origin": "https://www.example.com"},
        form([("email", "zoe@angstrom.example.se"), ("name", "Zoë")]),
        "application/x-www-form-urlencoded; charset=UTF-8")))
    return out


def main() -> None:
    groups = {"tracing": tracing(), "auth": auth(), "conditional": conditional(), "cors": cors(),
              "webhook": webhooks(), "proxy": proxies(), "negotiation": negotiation(),
              "client": clients(), "body-type": bodies()}
    tests = []
    for group, items in groups.items():
        for desc, inp in items:
            tests.append(benign(inp, KIND, desc, "placement:header", f"group:{group}"))
    write("benign/0008-unusual-headers.yaml", 8, "Benign: unusual but legitimate headers "
          "(tracing, auth schemes, conditional/range, CORS, webhook signatures, proxies, "
          "client hints, crawlers and API clients, less common body types)", tests)


if __name__ == "__main__":
    main()
