"""Benign traffic: real browsers' header sets, in their own order, with real cookies.

Writes ``benign/0007-browser-headers.yaml`` (kind ``browser-headers``). Fourteen
browser profiles (desktop Chrome, Edge, Brave, Opera, Firefox, Safari, IE 11;
Android Chrome, Samsung Internet, Firefox for Android; iOS Safari, Chrome and
in-app browsers) each make eight kinds of request (landing from an ad with
click ids, same-site navigation, fetch, image, script/style, font, form post,
reload/prefetch). Headers go out in the browser's order (``ordered_headers``)
and carry the cookies sites really set: analytics (``_ga``, ``_gid``, Adobe,
Mixpanel, Amplitude, Hotjar, Clarity), consent strings (OneTrust, Cookiebot,
IAB TCF), anti-bot and payment cookies, and framework sessions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benign_lib import (
    HTML_ACCEPT,
    b64url,
    benign,
    form,
    hexid,
    js,
    req,
    token,
    uid,
    uri_component,
)
from common import write

KIND = "browser-headers"
Pairs = list[tuple[str, str]]

# ------------------------------------------------------------------ cookies
T0 = 1733000000


def _cookie_sets() -> list[str]:
    tracking_consent = uri_component(js({"con": {"CMP": {"a": "", "m": "", "p": "", "s": ""}},
                                         "v": "2.1", "region": "USCA", "reg": ""}))
    mixpanel = uri_component(js({"distinct_id": "$device:1930a7c2d1e5f-0b3e",
                                 "$device_id": "1930a7c2d1e5f-0b3e",
                                 "$initial_referrer": "https://www.google.com/",
                                 "$initial_referring_domain": "www.google.com",
                                 "__mps": {}, "__mpso": {}}))
    amplitude = b64url(uri_component(js({"deviceId": uid("amp"), "sessionId": T0 * 1000,
                                         "optOut": False, "lastEventTime": T0 * 1000 + 5123,
                                         "lastEventId": 42})).encode())
    hotjar = b64url(js({"id": uid("hj"), "created": T0 * 1000, "existing": True}).encode())
    hotjar_session = b64url(js({"id": uid("hjs"), "c": T0 * 1000, "s": 0, "r": 0, "sb": 0,
                                "sr": 0, "se": 0, "fs": 1}).encode())
    return [
        # Google Analytics 4 + Ads + Meta pixel
        f"_ga=GA1.1.1234567890.{T0 - 86400 * 40}; _ga_8XK3Q2P1ZB=GS1.1.{T0}.12.1.{T0 + 456}"
        f".0.0.0; _gid=GA1.2.987654321.{T0}; _gcl_au=1.1.1616469823.{T0 - 86400 * 30}; "
        f"_fbp=fb.1.{T0 - 3600}123.123456789012345678",
        # OneTrust consent banner
        "OptanonAlertBoxClosed=2024-11-05T09:42:13.456Z; OptanonConsent=isGpcEnabled=0&"
        "datestamp=Tue+Nov+05+2024+10%3A42%3A13+GMT%2B0100+(Central+European+Standard+Time)&"
        f"version=202409.1.0&browserGpcFlag=0&isIABGlobal=false&hosts=&consentId={uid('ot')}&"
        "interactionCount=1&isAnonUser=1&landingPath=NotLandingPage&groups=C0001%3A1%2C"
        "C0002%3A1%2CC0003%3A0%2CC0004%3A0&AwaitingReconsent=false",
        # Cookiebot consent
        "CookieConsent={stamp:%27" + token("cb", 56) + "%3D%3D%27%2Cnecessary:true%2C"
        "preferences:true%2Cstatistics:true%2Cmarketing:false%2Cmethod:%27explicit%27%2Cver:1"
        f"%2Cutc:{T0 * 1000}%2Cregion:%27de%27}}",
        # IAB TCF v2 string + Google additional consent
        "euconsent-v2=CQHnGAAQHnGAAAHABBENBLFsAP_gAEPgAAAAKZtV_G__bWlr8X73aftkeY1P9_h77sQxBhf"
        + token("tcf", 220) + "; addtl_consent=1~43.46.55.61.70.83.89.93.108.117.122.124.131."
        "135.136.143.144.147.149.159.162.167.171.192.196.202.211.218.228.230.239.241.259.266",
        # Hotjar, Microsoft Clarity
        f"_hjSessionUser_3456789={hotjar}; _hjSession_3456789={hotjar_session}; "
        f"_clck=1x8kq2w%7C2%7Cfqm%7C0%7C1771; _clsk=1k9z0x1%7C{T0 * 1000}%7C3%7C1%7C"
        "z.clarity.ms%2Fcollect",
        # Segment, Mixpanel, Amplitude
        f"ajs_anonymous_id=%22{uid('ajs')}%22; ajs_user_id=%22{uid('user')}%22; "
        f"mp_{hexid('mp')}_mixpanel={mixpanel}; AMP_{hexid('amp', 10)}={amplitude}",
        # Adobe Experience Cloud
        "AMCV_1234567890ABCDEF%40AdobeOrg=-1124106680%7CMCIDTS%7C20032%7CMCMID%7C"
        "12345678901234567890123456789012345678%7CMCAAMLH-1731405733%7C6%7CMCAAMB-1731405733"
        "%7CRKhpRz8krg2tLO6pguXWp5olkAcUniQYPHaMWWgdJ3xzPWQmdj0y%7CMCOPTOUT-1730808133s%7C"
        "NONE%7CvVersion%7C5.5.0; s_cc=true; s_sq=%5B%5BB%5D%5D; s_ppv=home%2C87%2C87%2C1120",
        # Shopify storefront
        f"_shopify_y={uid('shy')}; _shopify_s={uid('shs')}; cart=Z2NwLXVzLWVhc3QxOjAxSkJa"
        f"{token('cart', 22)}%3Fkey%3D{hexid('ck')}; cart_currency=USD; localization=US; "
        f"_tracking_consent={tracking_consent}; _orig_referrer=https%3A%2F%2Fwww.google.com%2F; "
        "_landing_page=%2Fproducts%2Fdrop-leaf-table%3Futm_source%3Dgoogle",
        # Cloudflare bot management, Stripe fraud cookies
        f"__cf_bm={token('cfbm', 43)}-{T0}-1.0.1.1-{token('cfbm2', 86)}; cf_clearance="
        f"{token('cfc', 43)}-{T0}-1.2.1.1-{token('cfc2', 180)}; __stripe_mid="
        f"{uid('smid')}{hexid('smid', 6)}; __stripe_sid={uid('ssid')}{hexid('ssid', 6)}",
        # Laravel session + XSRF (encrypted JSON, URL-encoded base64)
        "XSRF-TOKEN=" + uri_component(b64url(js({"iv": token("iv", 24) + "==", "value":
                                                   token("val", 100), "mac": hexid("mac", 64),
                                                   "tag": ""}).encode()) + "=") +
        "; laravel_session=" + uri_component(b64url(js({"iv": token("iv2", 24) + "==",
                                                         "value": token("val2", 120),
                                                         "mac": hexid("mac2", 64),
                                                         "tag": ""}).encode()) + "="),
        # Java / .NET / Node / PHP sessions
        f"JSESSIONID={hexid('js', 32).upper()}.node02; ASP.NET_SessionId={token('asp', 24)}; "
        f".AspNetCore.Antiforgery.9fXoN5jHCXs=CfDJ8{token('af', 150)}; "
        f"connect.sid=s%3A{token('cs', 32)}.{token('cs2', 43)}; PHPSESSID={hexid('php', 26)}",
        # Django + HubSpot
        f"csrftoken={token('dcsrf', 64)}; sessionid={hexid('dsess', 32)}; hubspotutk="
        f"{hexid('hs')}; __hstc=123456789.{hexid('hs')}.{T0 - 86400}000.{T0 - 3600}000."
        f"{T0}000.7; __hssrc=1; __hssc=123456789.3.{T0}000",
        # NextAuth
        f"__Host-next-auth.csrf-token={hexid('na', 64)}%7C{hexid('na2', 64)}; "
        "__Secure-next-auth.callback-url=https%3A%2F%2Fapp.example.io%2Fdashboard%3Ftab%3D"
        "billing; __Secure-next-auth.session-token=eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0.."
        f"{token('jwe1', 22)}.{token('jwe2', 300)}.{token('jwe3', 22)}",
        # WordPress logged-in user
        f"wordpress_logged_in_{hexid('wp')}=editor%7C{T0 + 86400 * 14}%7C{token('wpt', 43)}"
        f"%7C{hexid('wph', 64)}; wp-settings-1=libraryContent%3Dbrowse%26editor%3Dtinymce%26"
        f"posts_list_mode%3Dlist; wp-settings-time-1={T0}",
        # Matomo, LinkedIn Insight, Google consent
        f"_pk_id.1.1fff=3c5b7a9e1d2f4a6b.{T0}.; _pk_ses.1.1fff=1; bcookie=\"v=2&{uid('li')}\";"
        f" lidc=\"b=VB12:s=V:r=V:a=V:p=V:g=3000:u=1:x=1:i={T0}:t={T0 + 86400}:v=2:sig=AQ"
        f"{token('lisig', 22)}\"; CONSENT=YES+cb.20210720-07-p0.en+FX+410; SOCS=CAISHAgBEhJnd3NfMj"
        "AyNDExMDQtMF9SQzIaAmVuIAEaBgiA_LyuBg",
        # Optimizely, TikTok, Pinterest, Google Ads click
        f"optimizelyEndUserId=oeu{T0}000r0.{hexid('opt', 16)}; _ttp={token('ttp', 27)}; "
        f"_pin_unauth=dWlkPU{token('pin', 40)}; _gcl_aw=GCL.{T0}.Cj0KCQiA{token('gclaw', 80)}",
    ]


COOKIES = _cookie_sets()

# ----------------------------------------------------------------- profiles


class Profile:
    """A browser: its User-Agent, client hints and how it orders request headers."""

    def __init__(self, name: str, ua: str, *, engine: str, hints: Pairs | None = None,
                 lang: str = "en-US,en;q=0.9", gpc: bool = False) -> None:
        self.name, self.ua, self.engine, self.hints = name, ua, engine, hints or []
        self.lang, self.gpc = lang, gpc

    def headers(self, host: str, *, accept: str, site: str, mode: str, dest: str,
                user: bool = False, referer: str | None = None, origin: str | None = None,
                cookie: str | None = None, extra: Pairs | None = None) -> Pairs:
        nav = mode == "navigate"
        if accept == HTML_ACCEPT and self.engine != "blink":
            accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        fetch = [("Sec-Fetch-Site", site), ("Sec-Fetch-Mode", mode)]
        if user:
            fetch.append(("Sec-Fetch-User", "?1"))
        fetch.append(("Sec-Fetch-Dest", dest))
        extra = extra or []
        out: Pairs = [("Host", host)]
        if self.engine == "blink":
            out += [(k, v) for k, v in extra if k == "Cache-Control"]
            out += self.hints
            if nav:
                out.append(("Upgrade-Insecure-Requests", "1"))
            if origin:
                out.append(("Origin", origin))
            out += [(k, v) for k, v in extra if k != "Cache-Control"]
            out += [("User-Agent", self.ua), ("Accept", accept)]
            if self.gpc:
                out.append(("Sec-GPC", "1"))
            out += fetch
            if referer:
                out.append(("Referer", referer))
            out += [("Accept-Encoding", "gzip, deflate, br, zstd"),
                    ("Accept-Language", self.lang)]
            if cookie:
                out.append(("Cookie", cookie))
        elif self.engine == "gecko":
            out += [("User-Agent", self.ua), ("Accept", accept),
                    ("Accept-Language", self.lang),
                    ("Accept-Encoding", "gzip, deflate, br, zstd")]
            out += extra
            if origin:
                out.append(("Origin", origin))
            if self.gpc:
                out.append(("Sec-GPC", "1"))
            if referer:
                out.append(("Referer", referer))
            if cookie:
                out.append(("Cookie", cookie))
            if nav:
                out.append(("Upgrade-Insecure-Requests", "1"))
            out += [("Sec-Fetch-Dest", dest), ("Sec-Fetch-Mode", mode),
                    ("Sec-Fetch-Site", site)]
            if user:
                out.append(("Sec-Fetch-User", "?1"))
            out.append(("Priority", "u=0, i" if nav else "u=4" if dest == "image" else "u=2"))
        elif self.engine == "webkit":
            out += [("Accept", accept), ("Sec-Fetch-Site", site)]
            if cookie:
                out.append(("Cookie", cookie))
            out += [("Sec-Fetch-Dest", dest), ("Accept-Language", self.lang),
                    ("Sec-Fetch-Mode", mode)]
            out += extra
            if origin:
                out.append(("Origin", origin))
            out += [("User-Agent", self.ua)]
            if referer:
                out.append(("Referer", referer))
            out.append(("Accept-Encoding", "gzip, deflate, br"))
        else:  # trident: Internet Explorer 11 sends no fetch metadata
            out += [("Accept", "text/html, application/xhtml+xml, image/jxr, */*"
                     if nav else accept)]
            if referer:
                out.append(("Referer", referer))
            out += [("Accept-Language", self.lang), ("User-Agent", self.ua)]
            out += extra
            out += [("Accept-Encoding", "gzip, deflate"), ("DNT", "1")]
            if cookie:
                out.append(("Cookie", cookie))
        return out


def _hints(brand: str, version: str, platform: str, mobile: bool = False,
           grease: str = '"Not_A Brand";v="24"') -> Pairs:
    return [("sec-ch-ua", f'"{brand}";v="{version}", "Chromium";v="{version}", {grease}'),
            ("sec-ch-ua-mobile", "?1" if mobile else "?0"),
            ("sec-ch-ua-platform", f'"{platform}"')]


WIN = "Windows NT 10.0; Win64; x64"
MAC = "Macintosh; Intel Mac OS X 10_15_7"
WEBKIT = "AppleWebKit/537.36 (KHTML, like Gecko)"
IOS_SAFARI_TAIL = "AppleWebKit/605.1.15 (KHTML, like Gecko)"

PROFILES = [
    Profile("Chrome 131 / Windows", f"Mozilla/5.0 ({WIN}) {WEBKIT} Chrome/131.0.0.0 "
            "Safari/537.36", engine="blink", hints=_hints("Google Chrome", "131", "Windows")),
    Profile("Chrome 131 / macOS", f"Mozilla/5.0 ({MAC}) {WEBKIT} Chrome/131.0.0.0 Safari/537.36",
            engine="blink", hints=_hints("Google Chrome", "131", "macOS"),
            lang="en-GB,en-US;q=0.9,en;q=0.8"),
    Profile("Edge 131 / Windows", f"Mozilla/5.0 ({WIN}) {WEBKIT} Chrome/131.0.0.0 "
            "Safari/537.36 Edg/131.0.0.0", engine="blink",
            hints=_hints("Microsoft Edge", "131", "Windows"), lang="de-DE,de;q=0.9,en;q=0.8"),
    Profile("Brave / Linux", f"Mozilla/5.0 (X11; Linux x86_64) {WEBKIT} Chrome/131.0.0.0 "
            "Safari/537.36", engine="blink", hints=_hints("Brave", "131", "Linux"), gpc=True),
    Profile("Opera 114 / Windows", f"Mozilla/5.0 ({WIN}) {WEBKIT} Chrome/129.0.0.0 "
            "Safari/537.36 OPR/114.0.0.0", engine="blink",
            hints=[("sec-ch-ua", '"Chromium";v="128", "Not;A=Brand";v="24", "Opera";v="114"'),
                   ("sec-ch-ua-mobile", "?0"), ("sec-ch-ua-platform", '"Windows"')]),
    Profile("Chrome 131 / Android", f"Mozilla/5.0 (Linux; Android 10; K) {WEBKIT} "
            "Chrome/131.0.0.0 Mobile Safari/537.36", engine="blink",
            hints=_hints("Google Chrome", "131", "Android", mobile=True),
            lang="es-MX,es-419;q=0.9,es;q=0.8,en;q=0.7"),
    Profile("Samsung Internet 26 / Android", "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B)"
            f" {WEBKIT} SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
            engine="blink",
            hints=[("sec-ch-ua", '"Chromium";v="122", "Not(A:Brand";v="24", '
                                 '"Samsung Internet";v="26.0"'),
                   ("sec-ch-ua-mobile", "?1"), ("sec-ch-ua-platform", '"Android"')],
            lang="ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7"),
    Profile("Firefox 133 / Windows", f"Mozilla/5.0 ({WIN}; rv:133.0) Gecko/20100101 "
            "Firefox/133.0", engine="gecko", lang="en-US,en;q=0.5"),
    Profile("Firefox ESR 128 / Linux", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) "
            "Gecko/20100101 Firefox/128.0", engine="gecko", lang="fr,fr-FR;q=0.8,en-US;q=0.5,"
            "en;q=0.3", gpc=True),
    Profile("Firefox 133 / Android", "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 "
            "Firefox/133.0", engine="gecko", lang="pl-PL,pl;q=0.8,en-US;q=0.5,en;q=0.3"),
    Profile("Safari 18 / macOS", f"Mozilla/5.0 ({MAC}) {IOS_SAFARI_TAIL} Version/18.1 "
            "Safari/605.1.15", engine="webkit", lang="en-GB,en;q=0.9"),
    Profile("Safari / iOS 18", f"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) "
            f"{IOS_SAFARI_TAIL} Version/18.1 Mobile/15E148 Safari/604.1", engine="webkit",
            lang="en-US,en;q=0.9"),
    Profile("Instagram in-app / iOS", f"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) "
            f"{IOS_SAFARI_TAIL} Mobile/22B83 Instagram 356.0.0.27.89 (iPhone15,3; iOS 18_1; "
            "en_US; en; scale=3.00; 1290x2796; 659823406; IABMV/1)", engine="webkit"),
    Profile("Facebook in-app / iOS", f"Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) "
            f"{IOS_SAFARI_TAIL} Mobile/21G93 [FBAN/FBIOS;FBAV/489.0.0.39.107;FBBV/659823406;"
            "FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.6.1;FBSS/3;FBID/phone;FBLC/en_US;"
            "FBOP/5;FBRV/661123985]", engine="webkit"),
    Profile("Internet Explorer 11 / Windows", "Mozilla/5.0 (Windows NT 10.0; WOW64; "
            "Trident/7.0; rv:11.0) like Gecko", engine="trident", lang="en-US"),
]

# --------------------------------------------------------------- requests
HOST = "shop.example.com"
SITE = f"https://{HOST}"
IMG_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
LANDINGS = [
    "/products/drop-leaf-table?utm_source=google&utm_medium=cpc&utm_campaign=furniture_q4"
    "&utm_term=drop%20leaf%20table&utm_content=ad_v2&gad_source=1&gclid=Cj0KCQiA" + token("g1", 90)
    + "_BwE",
    "/collections/summer?fbclid=IwZXh0bgNhZW0CMTAAAR" + token("fb", 120) + "_aem_"
    + token("aem", 22) + "&utm_source=facebook&utm_medium=paid&utm_campaign=summer24",
    "/?utm_source=newsletter&utm_medium=email&utm_campaign=black-friday-2024&_gl=1*1a2b3c*"
    "_ga*MTIzNDU2Nzg5MC4xNzEyMzQ1Njc4*_ga_8XK3Q2P1ZB*MTczMzAwMDAwMC4xMi4xLjE3MzMwMDA0NTYuMC4wLjA.",
    "/products/union-jack-flag?msclkid=" + hexid("ms") + "&utm_source=bing&utm_medium=cpc",
    "/pages/gift-guide?ttclid=E_C_P_" + token("tt", 60) + "&utm_source=tiktok",
    "/blogs/news/5-myths-about-drop-shipping?ref=producthunt&mc_cid=" + hexid("mc", 10)
    + "&mc_eid=" + hexid("mce", 10),
    "/products/cast-iron-skillet?variant=40000000007919&srsltid=AfmBOo" + token("srs", 60),
]
PAGES = ["/collections/all?page=2&sort_by=best-selling", "/products/rock-and-roll-tee?variant=1",
         "/account/orders/10482", "/cart", "/search?q=union+jack&type=product",
         "/pages/faq?section=returns", "/blogs/news", "/products/snake-plant-1ft"]


def _cookie(p: int, r: int, count: int = 3) -> str:
    return "; ".join(COOKIES[(p * 3 + r + k * 5) % len(COOKIES)] for k in range(count))


Request = Callable[[int, Profile], tuple[str, dict[str, Any]]]


def landing(p: int, b: Profile) -> tuple[str, dict[str, Any]]:
    uri = LANDINGS[p % len(LANDINGS)]
    h = b.headers(HOST, accept=HTML_ACCEPT, site="cross-site", mode="navigate", dest="document",
                  user=True, referer="https://www.google.com/", cookie=_cookie(p, 0, 1))
    return "landing from an ad/newsletter with click ids", req("GET", uri, h)


def navigate(p: int, b: Profile) -> tuple[str, dict[str, Any]]:
    page = PAGES[p % len(PAGES)]
    h = b.headers(HOST, accept=HTML_ACCEPT, site="same-origin", mode="navigate",
                  dest="document", user=True, referer=SITE + PAGES[(p + 1) % len(PAGES)],
                  cookie=_cookie(p, 1, 5))
    return "same-site navigation with a full analytics/consent cookie jar", req("GET", page, h)


def fetch_json(p: int, b: Profile) -> tuple[str, dict[str, Any]]:
    uri = ["/cart.js", "/api/v1/recommendations?product_id=40000000007919&limit=4&intent=related",
           "/api/v1/me", "/search/suggest.json?q=dro&resources%5Btype%5D=product"][p % 4]
    h = b.headers(HOST, accept="application/json, text/plain, */*" if p % 2 else "*/*",
                  site="same-origin", mode="cors", dest="empty", referer=SITE + PAGES[p % 8],
                  cookie=_cookie(p, 2, 2),
                  extra=[("X-Requested-With", "XMLHttpRequest")] if p % 3 == 0 else [])
    return "fetch() from the page", req("GET", uri, h)


def image(p: int, b: Profile) -> tuple[str, dict[str, Any]]:
    uri = ["/cdn/shop/files/hero@2x.webp?v=1730000000&width=1600",
           "/cdn/shop/products/IMG_2043.jpg?v=1712345678&width=533",
           "/images/logo.svg", "/cdn/shop/t/12/assets/icon-cart.svg?v=39812"][p % 4]
    accept = IMG_ACCEPT if b.engine != "gecko" else "image/avif,image/webp,image/png," \
                                                    "image/svg+xml,image/*;q=0.8,*/*;q=0.5"
    h = b.headers(HOST, accept=accept, site="same-origin", mode="no-cors", dest="image",
                  referer=SITE + PAGES[p % 8], cookie=_cookie(p, 3, 1))
    return "image subresource", req("GET", uri, h)


def script_style(p: int, b: Profile) -> tuple[str, dict[str, Any]]:
    if p % 2:
        uri, accept, dest = "/cdn/shop/t/12/assets/theme.css?v=17302811206", "text/css,*/*;q=0.1", \
            "style"
    else:
        uri, accept, dest = "/static/js/main.3f2a1b9c.chunk.js", "*/*", "script"
    h = b.headers(HOST, accept=accept, site="same-origin", mode="no-cors", dest=dest,
                  referer=SITE + "/", cookie=_cookie(p, 4, 1))
    return f"{dest} subresource", req("GET", uri, h)


def font(p: int, b: Profile) -> tuple[str, dict[str, Any]]:
    h = b.headers("fonts.example-cdn.com", accept="*/*", site="cross-site", mode="cors",
                  dest="font", referer=SITE + "/", origin=SITE)
    return "web font from a CDN (CORS)", req(
        "GET", "/s/inter/v13/UcC73FwrK3iLTeHuS_fvQtMwCp50KnMa1ZL7.woff2", h)


def form_post(p: int, b: Profile) -> tuple[str, dict[str, Any]]:
    body = form([("form_type", "customer_login"), ("utf8", "✓"),
                 ("customer[email]", ["siobhan.obrien@example.ie", "jl.lefevre+orders@example.fr",
                                      "dwayne.dangelo@example.com"][p % 3]),
                 ("customer[password]", ["Tr0ub4dor&3", "p@$$w0rd#2024!", "correct horse"][p % 3]),
                 ("return_url", "/account")])
    h = b.headers(HOST, accept=HTML_ACCEPT, site="same-origin", mode="navigate", dest="document",
                  user=True, referer=SITE + "/account/login", origin=SITE,
                  cookie=_cookie(p, 5, 2), extra=[("Cache-Control", "max-age=0")])
    return "log-in form submission", req("POST", "/account/login", h, body,
                                         "application/x-www-form-urlencoded")


def reload_or_prefetch(p: int, b: Profile) -> tuple[str, dict[str, Any]]:
    if p % 2 == 0:
        extra = [("Cache-Control", "max-age=0"),
                 ("If-None-Match", f'W/"cacheable:{hexid(f"etag{p}")}"'),
                 ("If-Modified-Since", "Tue, 05 Nov 2024 09:42:13 GMT")]
        h = b.headers(HOST, accept=HTML_ACCEPT, site="same-origin", mode="navigate",
                      dest="document", user=True, cookie=_cookie(p, 6, 2), extra=extra)
        return "reload with conditional headers", req("GET", PAGES[(p + 3) % 8], h)
    extra = [("Sec-Purpose", "prefetch;prerender")] if b.engine == "blink" else \
        [("X-Moz", "prefetch")] if b.engine == "gecko" else [("Purpose", "prefetch")]
    h = b.headers(HOST, accept=HTML_ACCEPT, site="same-origin", mode="navigate", dest="document",
                  referer=SITE + "/", cookie=_cookie(p, 7, 2), extra=extra)
    return "speculative prefetch of the next page", req("GET", PAGES[(p + 5) % 8], h)


REQUESTS: list[Request] = [landing, navigate, fetch_json, image, script_style, font, form_post,
                           reload_or_prefetch]


def main() -> None:
    tests = []
    for p, browser in enumerate(PROFILES):
        for build in REQUESTS:
            desc, inp = build(p, browser)
            placement = "cookie" if any(h["name"] == "Cookie" for h in inp["ordered_headers"]) \
                else "header"
            tests.append(benign(inp, KIND, f"{browser.name}: {desc}", f"placement:{placement}",
                                f"browser:{browser.engine}"))
    write("benign/0007-browser-headers.yaml", 7, "Benign: real browser header sets in browser "
          "order, with analytics, consent and session cookies", tests)


if __name__ == "__main__":
    main()
