"""Benign traffic: site searches whose words look like SQL, shell or markup.

Writes ``benign/0003-search.yaml`` (kind ``search``). Shoppers type "select a
size", "drop leaf table", "union jack flag", "O'Brien" and measurements in feet
and inches; developers search documentation for "left join", "where 1=1" or
"/etc/hosts". Each query is sent the way search boxes send it: a GET form
(``?q=``), a hosted search service's JSON (an Algolia-style ``params`` string
inside JSON), an autocomplete call or an SPA's JSON call.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, quote_plus

from benign_lib import (
    CHROME_UA,
    FIREFOX_UA,
    IPHONE_UA,
    SAFARI_UA,
    benign,
    js,
    query,
    req,
    site_headers,
    token,
    xhr_headers,
)
from common import write

KIND = "search"

SHOP_QUERIES = [
    "select a size", "drop shipping", "union jack flag", "snake plant 1' tall", "O'Brien",
    "rock & roll t-shirt", "drop leaf table", "cast iron skillet 10\"", "1/2\" drill bit",
    "men's jeans 32\" waist", "kids' shoes size 12", "Levi's 501", "Ben & Jerry's",
    "AT&T prepaid sim", "H&M hoodie", "M&M's party pack", "50% off", "100% cotton sheets",
    "sleeping bag -20°F", "\"red dress\" size 8", "waterproof jacket -kids",
    "coffee OR tea gift set", "black and white or grey rug", "char-broil grill cover",
    "select comfort mattress", "shoe inserts for flat feet", "table and 4 chairs",
    "L'Oréal shampoo", "rock 'n' roll vinyl", "6'2\" tall men's coat", "2' x 3' rug",
    "#1 best seller", "5 o'clock shadow trimmer", "Mother's Day gifts under $50",
    "exec chair with lumbar support", "'til death do us part mug",
    "Harry Potter -- Deathly Hallows", "iPhone 15 case; clear", "USB-C to USB-A (3ft)",
    "3/4\" plywood 4'x8'", "C++ mug", "script font stencil", "count chocula cereal",
    "null and void book", "truncated cone planter", "benchmark ssd 2tb",
    "JavaScript: The Good Parts", "insert coin arcade sign", "drop ceiling tiles",
    "sort by price low to high", "order by phone", "cast & crew", "buy 1 get 1 free",
    "update firmware router", "union station parking", "grant application template",
    "exec summary template", "sleep mask & earplugs", "1 or 2 bedroom apartment",
    "d'Artagnan", "it's a wonderful life dvd", "screws #8 x 1/2\"", "tables < $100",
    "size: 10; color: red", "AC/DC back in black", "pizza @ home oven", "Q&A", "wi-fi extender",
]
HELP_QUERIES = [
    "where is my order", "delete my account", "update payment method", "cancel order",
    "can't log in", "refund status?", "change e-mail address", "2fa code not working",
]
DOCS_QUERIES = [
    "sql left join example", "postgres order by nulls last", "mysql group_concat separator",
    "why use where 1=1 in sql", "python select.select timeout",
    "document.querySelectorAll vs getElementsByClassName", "bash if [ -f file ]",
    "c# string.Join", "regex match email address", "edit /etc/hosts mac",
    "C:\\Program Files (x86) missing", "git reset --hard HEAD~1", "npm ERR! code ERESOLVE",
    "TypeError: 'NoneType' object is not subscriptable", "404 page not found nginx",
    "<br> vs <br/>", "alert() not working in iframe", "x^2 + y^2 = 1", "what does && mean in bash",
    "drop table if exists postgres", "union vs union all", "insert or update sqlite",
    "${variable} in shell script", "java.lang.NullPointerException", "cron every 5 minutes */5",
    "curl -X POST json", "chmod 755 vs 644", "sudo !!", "onclick vs addEventListener",
    "docker exec -it bash",
]


def _shop(i: int, q: str) -> list[dict[str, Any]]:
    ua = [CHROME_UA, SAFARI_UA, IPHONE_UA, FIREFOX_UA][i % 4]
    host = "shop.example.com"
    out = []
    uri = "/search?" + query([("q", q), ("type", "product"), ("options[prefix]", "last")])
    out.append(benign(req("GET", uri, site_headers(
        host, ua=ua, Referer=f"https://{host}/collections/all", Sec_Fetch_Site="same-origin",
        Sec_Fetch_Mode="navigate", Sec_Fetch_Dest="document", Sec_Fetch_User="?1")),
        KIND, f"shop search box (GET): {q}", "placement:query"))
    if i % 3 == 0:
        params = query([("query", q), ("hitsPerPage", "24"), ("page", "0"),
                        ("facets", '["brand","price","size"]'),
                        ("filters", "in_stock:true AND NOT status:archived")], space="%20")
        body = js({"requests": [{"indexName": "prod_products", "params": params}]})
        out.append(benign(req(
            "POST", "/1/indexes/*/queries?x-algolia-agent=Algolia%20for%20JavaScript%20(4.24.0)"
                    "%3B%20Browser%3B%20instantsearch.js%20(4.75.0)&x-algolia-api-key="
                    + token(f"alg{i % 3}", 32) + "&x-algolia-application-id=LATENCY",
            {"Host": "latency-dsn.algolia.example", "User-Agent": ua, "Accept": "*/*",
             "Origin": f"https://{host}", "Referer": f"https://{host}/",
             "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"},
            body, "application/x-www-form-urlencoded"),
            KIND, f"hosted search (JSON with params string): {q}", "placement:json"))
    elif i % 3 == 1:
        uri = ("/search/suggest.json?" + query([("q", q), ("resources[type]", "product,query"),
                                                ("resources[limit]", "6"),
                                                ("section_id", "predictive-search")],
                                               brackets=True))
        out.append(benign(req("GET", uri, xhr_headers(host, ua=ua)), KIND,
                          f"predictive search as you type: {q}", "placement:query"))
    else:
        body = js({"query": q, "page": 1, "per_page": 24, "sort": "relevance",
                   "filters": {"in_stock": True, "price": {"min": None, "max": 500}}})
        out.append(benign(req("POST", "/api/v1/search", xhr_headers(host, ua=ua), body,
                              "application/json"), KIND, f"SPA product search (JSON): {q}",
                          "placement:json"))
    return out


def _help(i: int, q: str) -> list[dict[str, Any]]:
    host = "help.example.com"
    out = [benign(req("GET", "/hc/en-us/search?utf8=%E2%9C%93&query=" + quote_plus(q),
                      site_headers(host, Referer=f"https://{host}/hc/en-us")),
                  KIND, f"help centre search: {q}", "placement:query"),
           benign(req("GET", "/api/v2/help_center/articles/search.json?" + query(
               [("query", q), ("locale", "en-us"), ("per_page", "5")]), xhr_headers(host)),
               KIND, f"help widget search: {q}", "placement:query")]
    return out


def _docs(i: int, q: str) -> list[dict[str, Any]]:
    host = "docs.example.dev"
    ua = [FIREFOX_UA, CHROME_UA, SAFARI_UA][i % 3]
    out = [benign(req("GET", "/search?" + query([("q", q), ("check_keywords", "yes"),
                                                   ("area", "default")]),
                      site_headers(host, ua=ua, Referer=f"https://{host}/en/stable/")),
                  KIND, f"documentation search (GET): {q}", "placement:query")]
    if i % 2:
        out.append(benign(req("GET", "/api/v3/search/?" + query(
            [("q", q), ("project", "example"), ("version", "stable")], space="%20"),
            xhr_headers(host, ua=ua)), KIND, f"docs search API: {q}", "placement:query"))
        return out
    params = query([("query", q), ("hitsPerPage", "20"),
                    ("attributesToRetrieve", '["hierarchy.lvl0","hierarchy.lvl1","content",'
                                             '"url"]'),
                    ("facetFilters", '["language:en",["docusaurus_tag:default",'
                                     '"docusaurus_tag:docs-default-current"]]')], space="%20")
    out.append(benign(req("POST", "/1/indexes/*/queries?x-algolia-agent=Algolia%20for%20"
                                  "JavaScript%20(4.24.0)%3B%20Browser%20(lite)%3B%20docsearch"
                                  "%20(3.6.2)",
                          {"Host": "bh4d9od16a-dsn.algolia.example", "User-Agent": ua,
                           "Accept": "*/*", "Origin": f"https://{host}",
                           "Referer": f"https://{host}/", "x-algolia-api-key": token("ds", 32),
                           "x-algolia-application-id": "BH4D9OD16A"},
                          js({"requests": [{"indexName": "example-docs", "params": params}]}),
                          "application/x-www-form-urlencoded"),
                      KIND, f"DocSearch query (JSON): {q}", "placement:json"))
    return out


def _site_misc() -> list[dict[str, Any]]:
    """Search URLs that arrive from elsewhere: a search engine result, a saved link."""
    out = []
    out.append(benign(req("GET", "/s?k=" + quote_plus("union jack flag 3x5 outdoor") +
                          "&crid=2M3H8ZQ1Y7X4K&sprefix=union+jack%2Caps%2C187&ref=nb_sb_ss_ts-doa"
                          "-p_1_10", site_headers("www.marketplace.example")),
                      KIND, "marketplace search with suggestion tracking fields",
                      "placement:query"))
    out.append(benign(req("GET", "/search?q=" + quote("\"drop shipping\" site:example.com", safe="")
                          + "&hl=en&gl=us", site_headers("search.example.net")),
                      KIND, "search engine query with a quoted phrase and site: operator",
                      "placement:query"))
    out.append(benign(req("GET", "/wiki/Special:Search?search=" + quote_plus("Rock & Roll Hall "
                                                                             "of Fame") +
                          "&title=Special%3ASearch&ns0=1&fulltext=1",
                          site_headers("en.wiki.example.org")),
                      KIND, "wiki search with a namespace", "placement:query"))
    out.append(benign(req("GET", "/results?search_query=" + quote_plus("how to season a cast "
                                                                       "iron skillet (oven "
                                                                       "method)"),
                          site_headers("video.example.com", ua=IPHONE_UA)),
                      KIND, "video site search", "placement:query"))
    out.append(benign(req("GET", "/jobs/search?keywords=" + quote_plus("SQL developer") +
                          "&location=" + quote_plus("Zürich, Switzerland") + "&f_WT=2%2C3",
                          site_headers("jobs.example.com")),
                      KIND, "job search: 'SQL developer' in Zürich", "placement:query"))
    out.append(benign(req("GET", "/search?q=" + quote_plus("select") + "&type=code&l=SQL",
                          site_headers("code.example.com")),
                      KIND, "code host search for the word 'select'", "placement:query"))
    out.append(benign(req("GET", "/music/search?q=" + quote_plus("Guns N' Roses -- Sweet Child "
                                                                 "o' Mine (live)"),
                          site_headers("music.example.com", ua=SAFARI_UA)),
                      KIND, "music search with apostrophes and a double dash",
                      "placement:query"))
    out.append(benign(req("GET", "/recipes?q=" + quote_plus("mac & cheese (no-bake) <30 min"),
                          site_headers("recipes.example.com", ua=IPHONE_UA)),
                      KIND, "recipe search: 'mac & cheese (no-bake) <30 min'",
                      "placement:query"))
    return out


def main() -> None:
    tests: list[dict[str, Any]] = []
    for i, q in enumerate(SHOP_QUERIES):
        tests += _shop(i, q)
    for i, q in enumerate(HELP_QUERIES):
        tests += _help(i, q)
    for i, q in enumerate(DOCS_QUERIES):
        tests += _docs(i, q)
    tests += _site_misc()
    write("benign/0003-search.yaml", 3, "Benign: search queries with SQL-, shell- and "
          "markup-looking words, as search boxes and hosted search send them", tests)


if __name__ == "__main__":
    main()
