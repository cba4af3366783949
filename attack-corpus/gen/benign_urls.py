"""Benign traffic: URLs as they really look.

Writes ``benign/0012-urls.yaml`` (kind ``urls``): redirect and return
parameters holding encoded URLs (log-in ``next=``, OAuth ``redirect_uri``,
e-mail click tracking, link shorteners, safe-link wrappers), OAuth and OIDC
flows, signed object-store URLs, paths with dots, dashes, ``@``, ``~``,
``;jsessionid``, commas, parentheses and UTF-8 segments (wikis, maps, image
CDNs, font APIs), ``.well-known`` documents, framework asset URLs, and query
syntaxes of popular back ends (JSON:API brackets, PostgREST operators, Strapi's
``$``-prefixed filters, Directus, JSONP callbacks, analytics beacons).
"""

# Page titles have typographic dashes: keep them.
# ruff: noqa: RUF001

from __future__ import annotations

from typing import Any
from urllib.parse import quote, quote_plus

from benign_lib import (
    CHROME_UA,
    FIREFOX_UA,
    IPHONE_UA,
    SAFARI_UA,
    api_headers,
    benign,
    hexid,
    js,
    query,
    req,
    site_headers,
    token,
    uid,
    xhr_headers,
)
from common import write

KIND = "urls"
T0 = 1733000000


def _enc(url: str) -> str:
    return quote(url, safe="")


REDIRECTS: list[tuple[str, str, str]] = [
    ("log-in page with next= holding an encoded path and query", "app.example.io",
     "/login?next=" + _enc("/account/orders?page=2&status=open#recent")),
    ("log-out with an absolute redirect back to the site", "app.example.io",
     "/logout?redirect=" + _enc("https://www.example.com/?signed_out=1")),
    ("checkout with return and cancel URLs", "shop.example.com",
     "/checkout?return_url=%2Fcart&cancel_url=" + _enc("https://shop.example.com/cart?canceled=1")),
    ("OAuth authorize with PKCE, scopes and an encoded redirect_uri", "auth.example.com",
     "/oauth2/authorize?" + query([
         ("response_type", "code"), ("client_id", "web-app"),
         ("redirect_uri", "https://app.example.io/auth/callback"),
         ("scope", "openid profile email offline_access"), ("state", token("state", 43)),
         ("nonce", token("nonce", 43)), ("code_challenge", token("chal", 43)),
         ("code_challenge_method", "S256"), ("prompt", "consent"),
         ("ui_locales", "en-IE ga")], space="%20")),
    ("OAuth redirect_uri pointing at a local dev server", "accounts.example-idp.com",
     "/o/oauth2/v2/auth?" + query([
         ("client_id", "1234567890-abc123def456.apps.example-idp.com"),
         ("redirect_uri", "http://localhost:3000/api/auth/callback/google"),
         ("response_type", "code"), ("scope", "openid email profile"),
         ("state", token("devstate", 43)), ("access_type", "offline")])),
    ("OAuth callback with code, state and session_state", "app.example.io",
     "/auth/callback?code=" + token("authcode", 64) + "&state=" + token("state", 43)
     + "&session_state=" + uid("ss") + "." + token("ssx", 22) + "&iss=" + _enc(
         "https://auth.example.com/realms/shop")),
    ("OIDC logout with id_token_hint and post_logout_redirect_uri", "auth.example.com",
     "/realms/shop/protocol/openid-connect/logout?id_token_hint=eyJhbGciOiJSUzI1NiJ9."
     + token("idt", 300) + "." + token("ids", 86) + "&post_logout_redirect_uri="
     + _enc("https://app.example.io/?logged_out=true")),
    ("share dialog with url= and text=", "social.example.com",
     "/intent/tweet?" + query([("url", "https://shop.example.com/products/union-jack-flag?"
                                       "utm_source=share&utm_medium=social"),
                               ("text", "Look what I found: Union Jack Flag 3'x5' -- £18.50 "
                                        "🇬🇧"), ("hashtags", "rocknroll,flags")])),
    ("search engine result click-through wrapper", "www.search.example",
     "/url?sa=t&rct=j&q=&esrc=s&source=web&cd=&ved=2ahUKEwi" + token("ved", 40)
     + "&url=" + _enc("https://blog.example.org/2024/11/05/drop-shipping/") + "&usg=AOvVaw"
     + token("usg", 22) + "&opi=89978449"),
    ("e-mail click tracking with a long encoded payload", "links.mail.example.com",
     "/ls/click?upn=u001." + token("upn", 300) + "-2B" + token("upn2", 60) + "-3D"),
    ("newsletter click redirect with u, id and e", "example.us12.list-manage.example",
     "/track/click?u=" + hexid("mcu", 25) + "&id=" + hexid("mcid", 10) + "&e=" + hexid("mce", 10)),
    ("safe-links wrapper around a URL with its own query", "eur01.safelinks.protection.example",
     "/?url=" + _enc("https://shop.example.com/account/reset?token=" + token("rst", 40)
                     + "&email=zoe%40angstrom.example.se") + "&data=05%7C02%7Czoe%40angstrom."
     "example.se%7C" + hexid("sl", 32) + "%7C" + hexid("tenant", 32) + "%7C0%7C0%7C6386"
     "64837582342911%7CUnknown%7CTWFpbGZsb3d8eyJFbXB0eU1hcGkiOnRydWV9%7C0%7C%7C%7C&sdata="
     + _enc(token("sdata", 43) + "=") + "&reserved=0"),
    ("URL shortener expansion with a preview flag", "sho.rt",
     "/3xAmPl3?preview=1&ref=" + _enc("https://www.example.com/post/42#comments")),
    ("continue= after a consent interstitial", "consent.example.com",
     "/ml?continue=" + _enc("https://www.example.com/watch?v=dQw4w9WgXcQ&t=42s") + "&gl=IE&m=0"
     "&pc=yt&cm=2&hl=en&src=1"),
]

PATHS: list[tuple[str, str, str]] = [
    ("OpenID discovery document", "auth.example.com", "/.well-known/openid-configuration"),
    ("Apple app-site association", "shop.example.com", "/.well-known/apple-app-site-association"),
    ("security.txt", "www.example.com", "/.well-known/security.txt"),
    ("Android asset links", "shop.example.com", "/.well-known/assetlinks.json"),
    ("change-password well-known redirect", "app.example.io", "/.well-known/change-password"),
    ("WebFinger lookup for a fediverse account", "social.example",
     "/.well-known/webfinger?resource=" + _enc("acct:zoe@social.example")),
    ("source map next to a hashed bundle", "shop.example.com",
     "/static/js/main.3f2a1b9c.chunk.js.map"),
    ("Next.js image optimizer URL", "shop.example.com",
     "/_next/image?url=" + _enc("/images/hero@2x.jpg") + "&w=1920&q=75"),
    ("Next.js data route with a dynamic segment", "shop.example.com",
     "/_next/data/" + token("build", 21) + "/en/products/rock-and-roll-tee.json?handle="
     "rock-and-roll-tee"),
    ("versioned API path with a dot", "api.example.com", "/v1.2/users/jane.doe/avatar.png"),
    ("Mastodon-style @handle path", "social.example", "/@zoe/113434892345678901"),
    ("tilde home directory page", "people.example.edu", "/~priya/teaching/cs101/"),
    ("wiki title with an encoded plus", "en.wiki.example.org", "/wiki/C%2B%2B"),
    ("wiki title with UTF-8", "en.wiki.example.org", "/wiki/Caf%C3%A9_de_l%27%C3%89poque"),
    ("wiki title with an encoded ampersand", "en.wiki.example.org", "/wiki/Rock_%26_roll"),
    ("wiki title with parentheses and an apostrophe", "en.wiki.example.org",
     "/wiki/O%27Brien_(surname)"),
    ("wiki namespace colon (a talk page's history)", "en.wiki.example.org",
     "/wiki/Talk:SQL?action=history&offset=20241105094213&limit=50"),
    ("wiki title in Cyrillic", "ru.wiki.example.org",
     "/wiki/" + quote("Москва", safe="")),
    ("hashtag with an encoded sharp", "forum.example.org", "/tags/c%23"),
    ("forum thread slug with underscores", "forum.example.org",
     "/r/AskReddit/comments/1gk2x9z/whats_a_select_few_things_you_always_buy/"),
    ("map with coordinates and zoom after @", "maps.example.com",
     "/maps/@53.3498,-6.2603,15z"),
    ("map place with UTF-8, plus and apostrophe", "maps.example.com",
     "/maps/place/Caf%C3%A9+de+l'%C3%89poque/@53.3437,-6.2672,17z/data=!3m1!4b1!4m6!3m5"
     "!1s0x48670e9b:0x1a2b3c4d!8m2!3d53.3437!4d-6.2646"),
    ("retina image with @2x", "cdn.example.com", "/images/products/skillet@2x.png"),
    ("font file with a version query", "www.example.com",
     "/fonts/Inter-roman.var.woff2?v=3.19"),
    ("dated blog slug", "blog.example.org", "/2024/11/05/hello-world--again/"),
    ("file manager path in a query (cloud storage web UI)", "cloud.example.com",
     "/index.php/apps/files/?dir=/Documents/Taxes%202023&fileid=12345"),
    ("download endpoint with a file name", "www.example.com",
     "/download.php?file=report.final.v2.pdf&inline=0"),
    ("Java matrix parameter (jsessionid)", "portal.example.com",
     "/c/en/us/products/index.html;jsessionid=" + hexid("jsid", 32).upper() + ".node01"),
    ("label with an encoded ampersand", "blog.example.org",
     "/search/label/rock%20%26%20roll?max-results=20"),
    ("marketplace product URL with ref and search fields", "www.marketplace.example",
     "/Union-Jack-Flag-3x5-Nylon/dp/B08N5WRWNW/ref=sr_1_3?keywords=union+jack+flag"
     f"&qid={T0}&sr=8-3"),
    ("video with a timestamp and playlist", "video.example.com",
     "/watch?v=dQw4w9WgXcQ&t=42s&list=PL" + token("pl", 32)),
    ("image CDN transformation with commas in the path", "res.cloudinary.example",
     "/example/image/upload/c_fill,g_auto,w_400,h_300,q_auto,f_auto/v1730000000/products/"
     "drop-leaf-table.jpg"),
    ("image CDN parameters with commas", "assets.example.imgix.example",
     "/products/skillet.jpg?auto=format,compress&fit=crop&w=800&h=600&crop=faces,entropy&dpr=2"),
    ("web font API with colons, semicolons and @", "fonts.example-apis.com",
     "/css2?family=Inter:ital,wght@0,400;0,700;1,400&family=Noto+Sans+JP:wght@400;700"
     "&display=swap"),
    ("static map with parentheses in the path", "api.mapbox.example",
     "/styles/v1/mapbox/streets-v12/static/pin-s+555555(-6.2603,53.3498)/-6.2603,53.3498,14,0"
     "/600x400@2x?access_token=pk.eyJ1IjoiZXhhbXBsZSIsImEiOiJjbGV4YW1wbGUifQ." + token("mb", 22)),
    ("embedded map with !-separated protobuf parameters", "www.maps.example",
     "/maps/embed?pb=!1m18!1m12!1m3!1d2381.9!2d-6.2603!3d53.3498!2m3!1f0!2f0!3f0!3m2!1i1024!2i768"
     "!4f13.1!3m3!1m2!1s0x0%3A0x0!2zNTPCsDIwJzU5LjMiTiA2wrAxNSczNy4xIlc!5e0!3m2!1sen!2sie!4v"
     f"{T0}000!5m2!1sen!2sie"),
]

APIS: list[tuple[str, str, str]] = [
    ("JSON:API sparse fieldsets, filters and paging", "api.example.com",
     "/api/v1/items?ids=1,2,3&fields[items]=id,name,price&sort=-created_at"
     "&filter[status]=active&filter[price][gte]=10&page[size]=25&page[number]=2"
     "&include=author.profile"),
    ("PostgREST operators in the query", "db.example.supabase.co",
     "/rest/v1/orders?select=id,total,customer:customers(name,email),items:order_items(sku,qty)"
     "&total=gte.10&status=in.(paid,shipped)&note=ilike.*gift*&order=created_at.desc.nullslast"
     "&or=(status.eq.paid,and(status.eq.shipped,total.gt.100))&limit=20"),
    ("Strapi filters with $-prefixed operators", "cms.example.com",
     "/api/articles?filters[title][$containsi]=union&filters[publishedAt][$notNull]=true"
     "&filters[$or][0][category][slug][$eq]=music&filters[$or][1][tags][name][$in][0]=rock"
     "&populate=*&sort[0]=publishedAt:desc&pagination[page]=1&pagination[pageSize]=10"
     "&locale=en"),
    ("Directus filter syntax", "directus.example.com",
     "/items/products?filter[status][_eq]=published&filter[price][_between]=10,50"
     "&fields=*,brand.name,images.directus_files_id.*&sort=-date_created&limit=25&meta=*"),
    ("JSONP callback with a cache buster", "api.legacy.example.com",
     "/widgets/reviews.js?product=4471&callback=jQuery35106581234567890123_" + str(T0) + "000"
     "&_=" + str(T0) + "001"),
    ("analytics collect beacon (GET) with encoded page URL and title", "region1.analytics."
     "example", "/g/collect?v=2&tid=G-8XK3Q2P1ZB&gtm=45je4b10v9123456789za200&_p=" + str(T0)
     + "123&gcd=13l3l3l3l1l1&npa=0&dma=0&cid=1234567890.1712345678&ul=en-us&sr=1920x1080"
     "&uaa=x86&uab=64&uafvl=" + _enc("Google Chrome;131.0.6778.86|Chromium;131.0.6778.86")
     + "&uamb=0&uap=Windows&uapv=15.0.0&_s=1&sid=" + str(T0) + "&sct=12&seg=1&dl="
     + _enc("https://shop.example.com/products/drop-leaf-table?variant=1&utm_source=google")
     + "&dr=" + _enc("https://www.google.com/") + "&dt=" + _enc(
         "Drop-Leaf Dining Table (Oak) – Example Shop") + "&en=page_view&_ee=1&tfd=1843"),
    ("ad pixel beacon with many parameters", "www.pixel.example",
     "/tr/?id=1234567890123456&ev=PageView&dl=" + _enc("https://shop.example.com/cart")
     + "&rl=" + _enc("https://shop.example.com/products/union-jack-flag") + "&if=false&ts="
     + str(T0) + "456&sw=1920&sh=1080&v=2.9.174&r=stable&ec=0&o=4126&fbp=fb.1." + str(T0)
     + "123.123456789012345678&cs_est=true&ler=empty&cdl=API_unavailable&it=" + str(T0)
     + "001&coo=false&rqm=GET"),
    ("date range with encoded offsets", "api.example.com",
     "/api/v1/reports/sales?from=" + _enc("2024-01-01T00:00:00+01:00") + "&to=" + _enc(
         "2024-03-31T23:59:59.999+02:00") + "&tz=Europe%2FDublin&group_by=week"),
    ("e-mail with a plus and phone with a plus in the query", "api.example.com",
     "/api/v1/customers/lookup?email=jane%2Btest%40example.com&phone=%2B1-555-010-0199"),
    ("PHP-style array parameters", "shop.example.com",
     "/collections/shirts?tag[]=rock+%26+roll&tag[]=unisex&size[]=M&size[]=L&color=black|white"),
    ("price range with double dots", "shop.example.com",
     "/search?q=skillet&price=10..50&rating=4-&in_stock=1"),
    ("signed object-store download URL", "bucket.s3.eu-west-1.amazonaws.example",
     "/exports/2024/11/orders_2024-11.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
     + _enc("AKIAIOSFODNN7EXAMPLE/20241105/eu-west-1/s3/aws4_request") + "&X-Amz-Date="
     "20241105T094213Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&response-content-"
     "disposition=" + _enc('attachment; filename="orders (Nov).csv"') + "&X-Amz-Signature="
     + hexid("presign", 64)),
    ("blob-store SAS URL", "acct.blob.core.windows.example",
     "/invoices/INV-2024-113.pdf?sv=2022-11-02&ss=b&srt=sco&sp=r&se=2024-12-31T23:59:59Z"
     "&st=2024-11-05T00:00:00Z&spr=https&sig=" + _enc(token("sas", 43) + "=")),
    ("OData query options with $ and quotes", "erp.example.com",
     "/odata/v4/Orders?$filter=" + _enc("Customer/Name eq 'O''Brien & Daughters' and "
                                        "Total gt 100") + "&$orderby=OrderDate%20desc"
     "&$top=20&$skip=40&$count=true&$expand=Items($select=Sku,Qty)"),
    ("Solr-backed site search passing its query syntax", "search.example.edu",
     "/select?q=" + quote_plus("title:(rock AND roll) OR body:\"drop shipping\"") +
     "&fq=" + quote_plus("year:[2020 TO *]") + "&sort=" + quote_plus("score desc, year desc")
     + "&rows=20&wt=json&hl=true&hl.fl=body"),
]


def main() -> None:
    tests: list[dict[str, Any]] = []
    uas = [CHROME_UA, SAFARI_UA, FIREFOX_UA, IPHONE_UA]
    for k, (desc, host, uri) in enumerate(REDIRECTS):
        tests.append(benign(req("GET", uri, site_headers(host, ua=uas[k % 4], Referer=
                                                         "https://www.example.com/")),
                            KIND, desc, "placement:query", "group:redirect"))
    for k, (desc, host, uri) in enumerate(PATHS):
        tests.append(benign(req("GET", uri, site_headers(host, ua=uas[(k + 1) % 4])), KIND, desc,
                            "placement:path", "group:path"))
    for k, (desc, host, uri) in enumerate(APIS):
        headers = xhr_headers(host, ua=uas[k % 4]) if k % 2 else api_headers(
            host, ua="axios/1.7.7", token=token(f"u{k}", 40))
        tests.append(benign(req("GET", uri, headers), KIND, desc, "placement:query",
                            "group:api-query"))
    # A deep link and its JSON body twin: the app posts the URL it was opened with.
    deep = ("https://shop.example.com/products/rock-and-roll-tee?variant=1&utm_source=instagram"
            "&utm_medium=story&utm_content=" + _enc("Rock & Roll Tee – back in stock!"))
    tests.append(benign(req("POST", "/api/v1/deeplinks/resolve", api_headers(
        "api.example.com", ua="ExampleShop/5.12.0 (iPhone; iOS 18.1; Scale/3.00)",
        token=token("dl", 40)), js({"url": deep, "referrer": "instagram"}), "application/json"),
        KIND, "app resolves the deep link it was opened with (URL inside JSON)", "placement:json",
        "group:redirect"))
    write("benign/0012-urls.yaml", 12, "Benign: real-world URLs: encoded redirect parameters, "
          "OAuth/OIDC flows, signed URLs, paths with dots, @, ~, commas, parentheses and UTF-8, "
          "and back-end query syntaxes", tests)


if __name__ == "__main__":
    main()
