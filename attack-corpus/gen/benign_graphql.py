"""Benign traffic: GraphQL operations as real clients send them.

Writes ``benign/0010-graphql.yaml`` (kind ``graphql``): queries with variables,
fragments, aliases, directives and inline fragments; mutations with input
objects; search arguments with prose; introspection as GraphiQL sends it on
load; Apollo automatic persisted queries (GET with ``extensions`` and POST with
only a hash); batched operations; GET queries in the URL; and a file upload
by the GraphQL multipart request convention.
"""

from __future__ import annotations

import json
from textwrap import dedent
from typing import Any
from urllib.parse import quote

from benign_lib import (
    BOUNDARY_CHROME,
    api_headers,
    benign,
    hexid,
    js,
    multipart,
    req,
    token,
    uid,
    xhr_headers,
)
from common import write

KIND = "graphql"
JSON = "application/json"

FRAGMENTS = dedent("""\
    fragment MoneyFields on MoneyV2 { amount currencyCode }
    fragment ProductCard on Product {
      id
      handle
      title
      vendor
      featuredImage { url(transform: {maxWidth: 400, preferredContentType: WEBP}) altText }
      priceRange { minVariantPrice { ...MoneyFields } }
    }
""")

# (operation name, query, variables, description)
OPERATIONS: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("SearchProducts", dedent("""\
        query SearchProducts($query: String!, $first: Int = 24, $after: String) {
          search(query: $query, first: $first, after: $after, types: [PRODUCT]) {
            totalCount
            pageInfo { hasNextPage endCursor }
            edges { node { ... on Product { ...ProductCard } } }
          }
        }
        """) + FRAGMENTS, {"query": "union jack flag 3'x5'", "first": 24},
     "storefront search with fragments"),
    ("ProductByHandle", dedent("""\
        query ProductByHandle($handle: String!, $withReviews: Boolean = false) {
          product(handle: $handle) {
            ...ProductCard
            descriptionHtml
            options { name values }
            variants(first: 50) { nodes { id title availableForSale price { ...MoneyFields } } }
            reviews: metafield(namespace: "reviews", key: "rating") @include(if: $withReviews) {
              value
            }
          }
        }
        """) + FRAGMENTS, {"handle": "rock-and-roll-tee", "withReviews": True},
     "product page with an @include directive and an alias"),
    ("CartLinesAdd", dedent("""\
        mutation CartLinesAdd($cartId: ID!, $lines: [CartLineInput!]!) {
          cartLinesAdd(cartId: $cartId, lines: $lines) {
            cart { id totalQuantity cost { totalAmount { amount currencyCode } } }
            userErrors { field message code }
          }
        }
        """), {"cartId": "gid://shopify/Cart/" + token("cart", 26), "lines": [
            {"merchandiseId": "gid://shopify/ProductVariant/40000000007919", "quantity": 2,
             "attributes": [{"key": "Engraving", "value": "J & M — 06/15/2024"}]}]},
     "add-to-cart mutation with line attributes"),
    ("CheckoutShippingAddressUpdate", dedent("""\
        mutation CheckoutShippingAddressUpdate($checkoutId: ID!, $address: MailingAddressInput!) {
          checkoutShippingAddressUpdateV2(checkoutId: $checkoutId, shippingAddress: $address) {
            checkout { id ready }
            checkoutUserErrors { code field message }
          }
        }
        """), {"checkoutId": "gid://shopify/Checkout/" + hexid("co"), "address": {
            "firstName": "Siobhán", "lastName": "O'Brien", "address1": "14 St. Stephen's Green",
            "address2": "Apt. #4B", "city": "Dublin", "country": "IE", "zip": "D02 XY45",
            "phone": "+353 1 555 0142"}},
     "checkout address mutation with an input object"),
    ("Viewer", "query Viewer { viewer { id login name avatarUrl(size: 64) } }", None,
     "minimal viewer query"),
    ("IssueSearch", dedent("""\
        query IssueSearch($q: String!, $cursor: String) {
          search(query: $q, type: ISSUE, first: 20, after: $cursor) {
            issueCount
            nodes {
              ... on Issue { number title url state labels(first: 5) { nodes { name color } } }
              ... on PullRequest { number title url isDraft mergeable }
            }
          }
          rateLimit { cost remaining resetAt }
        }
        """), {"q": "repo:example/shop is:open label:bug \"select a size\" sort:updated-desc"},
     "code-host search with qualifiers and inline fragments"),
    ("AddComment", dedent("""\
        mutation AddComment($subjectId: ID!, $body: String!) {
          addComment(input: {subjectId: $subjectId, body: $body}) {
            commentEdge { node { id url } }
          }
        }
        """), {"subjectId": "I_kwDOA" + token("iss", 14), "body":
               "Repro:\n\n```sql\nSELECT * FROM orders WHERE customer = 'O''Brien';\n```\n\n"
               "Works in psql, 500s via the API. cc @priya-r"},
     "mutation whose variable is a markdown comment with SQL"),
    ("Orders", dedent("""\
        query Orders($where: orders_bool_exp!, $limit: Int!) {
          orders(where: $where, order_by: [{created_at: desc_nulls_last}], limit: $limit) {
            id total status created_at
            customer { name email }
            items_aggregate { aggregate { count sum { qty } } }
          }
        }
        """), {"where": {"_and": [{"total": {"_gte": 100}}, {"status": {"_in": ["paid",
                                                                                 "shipped"]}},
                                  {"customer": {"name": {"_ilike": "%o'brien%"}}}]},
               "limit": 50},
     "Hasura-style filter operators in variables"),
    ("UpdateProfile", dedent("""\
        mutation UpdateProfile($input: UpdateProfileInput!) {
          updateProfile(input: $input) {
            user { id displayName bio website }
            errors { path message }
          }
        }
        """), {"input": {"displayName": "Zoë Ångström", "bio": "Eng @ Ångström AB · "
                         "<3 Go & Postgres · she/her", "website": "https://zoe.example.se/"}},
     "profile mutation with symbols in a bio"),
    ("Feed", dedent("""\
        query Feed($first: Int!, $after: String, $lang: [String!]) {
          feed(first: $first, after: $after, filter: {languages: $lang}) {
            edges {
              cursor
              node {
                __typename
                ... on Post { id text createdAt author { handle displayName } }
                ... on Repost { id originalPost { id text } }
              }
            }
          }
        }
        """), {"first": 30, "after": "YXJyYXljb25uZWN0aW9uOjI5", "lang": ["en", "ga"]},
     "feed query with __typename and base64 cursor"),
    ("CreateEvent", dedent("""\
        mutation CreateEvent($input: EventInput!) {
          createEvent(input: $input) { event { id startsAt endsAt } }
        }
        """), {"input": {"title": "Team lunch @ Luigi's 🍝", "startsAt":
                         "2024-11-15T12:30:00+01:00", "endsAt": "2024-11-15T14:00:00+01:00",
                         "rrule": "FREQ=MONTHLY;BYDAY=3FR", "attendees": ["priya_r@example.in",
                                                                           "t.wisniewski@"
                                                                           "example.pl"]}},
     "calendar mutation with an RRULE"),
    ("Dashboard", dedent("""\
        query Dashboard($from: DateTime!, $to: DateTime!) {
          today: salesSummary(range: {from: $from, to: $to}) { orders revenue { amount } }
          lastWeek: salesSummary(range: {preset: LAST_7_DAYS}) { orders revenue { amount } }
          topProducts(limit: 5, sort: {field: REVENUE, direction: DESC}) { title revenue }
        }
        """), {"from": "2024-11-05T00:00:00Z", "to": "2024-11-05T23:59:59Z"},
     "dashboard with aliases and enum arguments"),
    ("AdminProducts", dedent("""\
        query AdminProducts($q: String!, $sort: ProductSortKeys = BEST_SELLING) {
          products(first: 10, query: $q, sortKey: $sort, reverse: false) {
            nodes { id title status totalInventory tags }
          }
        }
        """), {"q": "title:*union* AND product_type:Flags AND -status:archived"},
     "admin product search with a query-syntax string"),
    ("NodeById", dedent("""\
        query NodeById($id: ID!) {
          node(id: $id) {
            id
            ... on User { name login }
            ... on Organization { name description }
          }
        }
        """), {"id": "VXNlcjo0Mg=="}, "Relay node lookup with a base64 global id"),
    ("Login", dedent("""\
        mutation Login($email: String!, $password: String!) {
          login(email: $email, password: $password) { token refreshToken user { id } }
        }
        """), {"email": "jl.lefevre+orders@example.fr", "password": "p@$$w0rd#2024!"},
     "login mutation with a symbol-heavy password"),
    ("CreateNote", dedent('''\
        mutation CreateNote {
          # block string argument, as people write it in GraphiQL
          createNote(folder: "Personal", text: """
            Groceries: milk, eggs, bread & butter
            "Remember" the 20% off coupon -- expires Fri!
          """) { id }
        }
        '''), None, "mutation with a comment and a block string literal"),
    ("NearbyStores", dedent("""\
        query NearbyStores($lat: Float!, $lng: Float!) {
          nearbyStores(lat: $lat, lng: $lng, radiusKm: 2.5, openNow: true) {
            name address distanceKm hours { day open close }
          }
        }
        """), {"lat": 53.3498, "lng": -6.2603}, "store locator with float arguments"),
    ("BlogPost", dedent("""\
        query BlogPost($slug: String!, $preview: Boolean = false) {
          blogPostCollection(where: {slug: $slug}, limit: 1, locale: "en-US", preview: $preview) {
            items {
              title
              body { json links { assets { block { url title } } } }
              author { name }
            }
          }
        }
        """), {"slug": "5-myths-about-drop-shipping"}, "headless CMS query with rich-text JSON"),
    ("DeleteItems", dedent("""\
        mutation DeleteItems($ids: [ID!]!) {
          deleteItems(ids: $ids) { deletedIds errors { id message } }
        }
        """), {"ids": [uid(f"item{k}") for k in range(4)]}, "bulk delete mutation"),
    ("Reviews", dedent("""\
        query Reviews($productId: ID!, $skipPhotos: Boolean!) {
          reviews(productId: $productId, first: 10, orderBy: {field: HELPFUL, direction: DESC}) {
            nodes {
              rating title body
              photos @skip(if: $skipPhotos) { url }
              author { displayName }
            }
          }
        }
        """), {"productId": "gid://shop/Product/4471", "skipPhotos": True},
     "reviews with an @skip directive"),
]

INTROSPECTION = dedent("""\
    query IntrospectionQuery {
      __schema {
        queryType { name }
        mutationType { name }
        subscriptionType { name }
        types { ...FullType }
        directives { name description locations args { ...InputValue } }
      }
    }
    fragment FullType on __Type {
      kind name description
      fields(includeDeprecated: true) {
        name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
      }
      inputFields { ...InputValue }
      interfaces { ...TypeRef }
      enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
      possibleTypes { ...TypeRef }
    }
    fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
    fragment TypeRef on __Type {
      kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } }
    }
""")


def _spa(**extra: str) -> dict[str, str]:
    return xhr_headers("shop.example.com", Accept="application/graphql-response+json, "
                                                  "application/json", **extra)


def operations() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for k, (name, query, variables, desc) in enumerate(OPERATIONS):
        body: dict[str, Any] = {"operationName": name, "query": query}
        if variables is not None:
            body["variables"] = variables
        if k % 3 == 0:
            headers = _spa(apollographql_client_name="shop-web",
                           apollographql_client_version="2.14.3")
            path = "/graphql"
        elif k % 3 == 1:
            headers = {**xhr_headers("shop.example.com"),
                       "X-Shopify-Storefront-Access-Token": hexid(f"sf{k}", 32)}
            path = "/api/2024-10/graphql.json"
        else:
            headers = api_headers("api.code.example.com", ua="octokit-graphql.js/8.1.1",
                                  token="ghp_" + token(f"gql{k}", 36))
            path = "/graphql"
        out.append((f"{desc} ({name})", req("POST", path, headers, js(body), JSON)))
        # The same operation as a GET (Apollo useGETForQueries / CDN-cacheable queries).
        if query.lstrip().startswith("query") and k % 2 == 0:
            uri = f"/graphql?operationName={name}&query={quote(query, safe='')}"
            if variables is not None:
                uri += "&variables=" + quote(js(variables), safe="")
            out.append((f"{desc} as a GET ({name})", req("GET", uri, _spa())))
    return out


def specials() -> list[tuple[str, dict[str, Any]]]:
    out = []
    out.append(("introspection query from GraphiQL on load", req(
        "POST", "/graphql", {**xhr_headers("api.example.dev", origin="https://api.example.dev"),
                             "Referer": "https://api.example.dev/graphiql"},
        js({"query": INTROSPECTION, "operationName": "IntrospectionQuery"}), JSON)))
    sha = hexid("apq-search", 64)
    ext = js({"persistedQuery": {"version": 1, "sha256Hash": sha}})
    out.append(("Apollo persisted query: GET with extensions and variables", req(
        "GET", "/graphql?operationName=SearchProducts&variables=" + quote(js(
            {"query": "drop leaf table", "first": 24}), safe="") + "&extensions="
        + quote(ext, safe=""), _spa(apollographql_client_name="shop-web"))))
    out.append(("Apollo persisted query: POST with only the hash", req(
        "POST", "/graphql", _spa(), js({"operationName": "ProductByHandle", "variables": {
            "handle": "snake-plant-1ft"}, "extensions": {"persistedQuery": {
                "version": 1, "sha256Hash": hexid("apq-product", 64)}}}), JSON)))
    out.append(("batched operations in one POST", req("POST", "/graphql", _spa(), js([
        {"operationName": "Viewer", "query": "query Viewer { viewer { id name } }"},
        {"operationName": "Cart", "query": "query Cart($id: ID!) { cart(id: $id) { id "
                                           "totalQuantity lines(first: 10) { nodes { id "
                                           "quantity } } } }",
         "variables": {"id": "gid://shopify/Cart/" + token("cart", 26)}},
        {"operationName": "Menu", "query": "query Menu { menu(handle: \"main-menu\") { items { "
                                           "title url items { title url } } } }"}]), JSON)))
    out.append(("short query in the URL (curl)", req(
        "GET", "/graphql?query=%7Bme%7Bid%20name%20email%7D%7D", api_headers(
            "api.example.com", ua="curl/8.5.0", token=token("gqlcurl", 40)))))
    out.append(("query sent as application/graphql", req(
        "POST", "/graphql", api_headers("api.example.com", ua="graphql-request/7.1.2"),
        "{ products(first: 5, query: \"title:*union* AND product_type:Flags\") { edges { node "
        "{ id title } } } }", "application/graphql")))
    operations_json = js({"query": "mutation UploadAvatar($file: Upload!, $alt: String) { "
                                   "uploadAvatar(file: $file, alt: $alt) { url } }",
                          "variables": {"file": None, "alt": "Me at O'Connell Bridge"}})
    ctype, body = multipart([("operations", operations_json),
                             ("map", json.dumps({"0": ["variables.file"]})),
                             ("0", "avatar notes.txt", "text/plain",
                              "placeholder file standing in for an image")], BOUNDARY_CHROME)
    out.append(("file upload by the GraphQL multipart request convention", req(
        "POST", "/graphql", _spa(Apollo_Require_Preflight="true"), body, ctype)))
    out.append(("subscription over SSE (GraphQL over HTTP)", req(
        "POST", "/graphql/stream", {**xhr_headers("app.example.io"),
                                    "Accept": "text/event-stream"},
        js({"query": "subscription OnOrder($shop: ID!) { orderCreated(shopId: $shop) { id "
                     "total customer { name } } }", "variables": {"shop": uid("shop")}}),
        JSON)))
    return out


def main() -> None:
    tests = []
    for desc, inp in operations() + specials():
        placement = "query" if inp["method"] == "GET" else \
            "multipart" if "multipart" in inp["headers"].get("Content-Type", "") else "json"
        tests.append(benign(inp, KIND, "GraphQL: " + desc, f"placement:{placement}"))
    write("benign/0010-graphql.yaml", 10, "Benign: GraphQL queries, mutations, fragments, "
          "persisted queries, batches and uploads", tests)


if __name__ == "__main__":
    main()
