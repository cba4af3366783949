"""Benign traffic: REST calls beyond GET and POST.

Writes ``benign/0009-rest-methods.yaml`` (kind ``rest-methods``): PATCH with JSON
merge patches and JSON Patch documents, PUT of whole resources and of file
content (object stores, config stores), DELETE with and without bodies, HEAD
probes (object stores, link checkers, container registries), OPTIONS discovery,
resumable uploads (tus), a container-registry blob push, Kubernetes API calls
with label selectors, and the WebDAV/CalDAV methods file-sync and calendar
clients send (PROPFIND, REPORT, MKCOL, MOVE, COPY).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from benign_lib import (
    FIREFOX_UA,
    IPHONE_UA,
    api_headers,
    basic,
    benign,
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

KIND = "rest-methods"
JSON = "application/json"
Case = tuple[str, dict[str, Any]]
KUBECTL = "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46"


def _app(**extra: str) -> dict[str, str]:
    return xhr_headers("app.example.io", Authorization="Bearer " + jwt(
        {"sub": uid("rest-user"), "exp": 1733086400}), **extra)


def patches() -> list[Case]:
    out: list[Case] = []
    out.append(("PATCH with a JSON body (partial update from an SPA)", req(
        "PATCH", "/api/v1/users/me", _app(),
        js({"display_name": "Siobhán O'Brien", "bio": "Rock & roll, plants (1' tall ones) "
            "and \"good\" coffee ☕", "website": "https://obrien.example.ie/?ref=profile"}), JSON)))
    out.append(("PATCH application/merge-patch+json with a null to delete a key", req(
        "PATCH", "/api/v1/projects/" + uid("proj"), _app(),
        js({"name": "Q3 launch — web", "settings": {"visibility": "private", "legacy_flag": None},
            "labels": ["web", "launch"]}), "application/merge-patch+json")))
    out.append(("PATCH application/json-patch+json (RFC 6902, ~1 escapes)", req(
        "PATCH", "/api/v1/documents/" + uid("doc"), _app(),
        js([{"op": "test", "path": "/version", "value": 17},
            {"op": "replace", "path": "/title", "value": "Launch checklist ✅"},
            {"op": "add", "path": "/tags/-", "value": "q3"},
            {"op": "remove", "path": "/tags/0"},
            {"op": "add", "path": "/metadata/app.kubernetes.io~1version", "value": "2.14.3"},
            {"op": "move", "from": "/draft/body", "path": "/body"},
            {"op": "copy", "from": "/owner", "path": "/reviewers/0"}]),
        "application/json-patch+json")))
    out.append(("kubectl scale: strategic merge patch", req(
        "PATCH", "/apis/apps/v1/namespaces/shop/deployments/web/scale", api_headers(
            "k8s.example.internal:6443", ua=KUBECTL, token=token("k8s", 800),
            Accept="application/json"), js({"spec": {"replicas": 4}}),
        "application/merge-patch+json")))
    out.append(("kubectl annotate: server-side apply patch", req(
        "PATCH", "/api/v1/namespaces/shop/configmaps/web-config?fieldManager=kubectl"
                 "&fieldValidation=Strict&force=true", api_headers(
            "k8s.example.internal:6443", ua=KUBECTL, token=token("k8s", 800)),
        js({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config",
                                                                  "annotations": {
            "kubernetes.io/change-cause": "kubectl apply --filename=web.yaml --record=true"}},
            "data": {"FEATURE_FLAGS": "search=on,reviews=off", "SUPPORT_EMAIL":
                     "support@shop.example.com", "WELCOME_TEXT": "Hi! 👋 What's new?"}}),
        "application/apply-patch+yaml")))
    out.append(("PATCH a GitHub-style repository description", req(
        "PATCH", "/repos/example/shop", api_headers(
            "api.code.example.com", ua="octokit-rest.js/21.0.2", token="ghp_" + token("gh", 36),
            Accept="application/vnd.github+json", X_GitHub_Api_Version="2022-11-28"),
        js({"description": "Storefront — Rock & Roll merch (React + Flask)",
            "homepage": "https://shop.example.com", "has_wiki": False,
            "topics": ["e-commerce", "react", "flask"]}), JSON)))
    out.append(("PATCH with If-Match and Prefer: return=minimal", req(
        "PATCH", "/odata/v4/Customers('ALFKI')", api_headers(
            "erp.example.com", ua="Microsoft.OData.Client/7.21.3", token=token("od", 60),
            If_Match='W/"datetime\'2024-11-05T09%3A42%3A13.456Z\'"', Prefer="return=minimal"),
        js({"ContactName": "María José Núñez-García", "Phone": "+34 612 345 678"}), JSON)))
    return out


def puts() -> list[Case]:
    out: list[Case] = []
    out.append(("PUT a whole resource", req(
        "PUT", "/api/v1/addresses/" + uid("addr"), _app(),
        js({"label": "Home", "name": "Dwayne D'Angelo Jr.", "line1": "1600 Amphitheatre Pkwy",
            "line2": "Apt. #4B", "city": "Mountain View", "region": "CA", "postal_code":
            "94043-1351", "country": "US", "phone": "(555) 010-0199", "default": True}),
        JSON)))
    csv = "sku,name,qty\nFLAG-UJ-3X5,\"Union Jack Flag 3'x5'\",25\nPLT-SNAKE-12,\"Snake Plant, " \
          "1' tall\",8\n"
    out.append(("PUT an object into an S3-compatible store with metadata headers", req(
        "PUT", "/exports/2024/11/inventory%20(final).csv", api_headers(
            "bucket.s3.eu-west-1.amazonaws.example", ua="aws-cli/2.18.0 Python/3.12.6 "
            "Linux/6.8.0 exe/x86_64.ubuntu.24 prompt/off command/s3.cp",
            Authorization="AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20241105/eu-west-1/"
                          "s3/aws4_request, SignedHeaders=content-md5;content-type;host;x-amz-"
                          "content-sha256;x-amz-date;x-amz-meta-author, "
                          f"Signature={hexid('s3', 64)}",
            X_Amz_Date="20241105T094213Z", X_Amz_Content_Sha256=hashlib.sha256(
                csv.encode()).hexdigest(), X_Amz_Meta_Author="=?UTF-8?B?" + base64.b64encode(
                "Zoë Ångström".encode()).decode() + "?=",
            Content_MD5=base64.b64encode(hashlib.md5(csv.encode()).digest()).decode(),
            X_Amz_Storage_Class="STANDARD_IA"), csv, "text/csv")))
    out.append(("PUT a file via WebDAV (desktop sync client)", req(
        "PUT", "/remote.php/dav/files/priya/Documents/Notes%20%26%20Ideas/meeting%20notes"
               "%20(5%20Nov).md", {
            "Host": "cloud.example.com", "User-Agent": "Mozilla/5.0 (Windows) mirall/3.14.1 "
                                                       "(Nextcloud, windows-10.0.22631 ClientArch"
                                                       "itecture: x86_64 OsArchitecture: x86_64)",
            "Authorization": basic("priya", token("nc", 72)),
            "OC-Checksum": "SHA1:" + hexid("nc-sha1", 40), "X-OC-Mtime": "1733000000",
            "OC-Total-Length": "88"},
        "# Meeting notes (5 Nov)\n\n- Budget: approved\n- Next: Tue @ 3pm\n- @zoe: send deck\n",
        "text/markdown")))
    out.append(("PUT a key into a config store", req(
        "PUT", "/v1/kv/shop/web/feature-flags?cas=12345", api_headers(
            "consul.internal:8500", ua="Consul-Template/0.39.1", X_Consul_Token=uid("consul")),
        js({"search": {"enabled": True, "provider": "algolia"}, "reviews": False,
            "banner": "Free shipping over €50 — this week only!"}), JSON)))
    out.append(("PUT an index mapping", req("PUT", "/products-v2", api_headers(
        "search.internal:9200", ua="elasticsearch-js/8.15.0 (linux 6.8.0-x64; Node.js 20.18.0)",
        Authorization=basic("elastic", "ch@ngeme!")),
        js({"settings": {"number_of_shards": 1, "analysis": {"analyzer": {"folding": {
            "tokenizer": "standard", "filter": ["lowercase", "asciifolding"]}}}},
            "mappings": {"properties": {"name": {"type": "text", "analyzer": "folding"},
                                        "price": {"type": "scaled_float", "scaling_factor": 100},
                                        "tags": {"type": "keyword"}}}}), JSON)))
    out.append(("PUT a calendar event (CalDAV) with an iCalendar body", req(
        "PUT", "/calendars/zoe/work/" + uid("ics") + ".ics", {
            "Host": "dav.example.com", "User-Agent": "macOS/15.1 (24B83) CalendarAgent/1002",
            "Authorization": basic("zoe", token("cal", 24)), "If-None-Match": "*"},
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Apple Inc.//macOS 15.1//EN\r\n"
        "BEGIN:VEVENT\r\nUID:" + uid("ics") + "\r\nDTSTART;TZID=Europe/Stockholm:20241112T10000"
        "0\r\nDTEND;TZID=Europe/Stockholm:20241112T113000\r\nSUMMARY:Design review: checkout "
        "v2 (bring laptops!)\r\nLOCATION:Room 4.12\\, 4th floor\r\nEND:VEVENT\r\nEND:VCALENDAR"
        "\r\n", "text/calendar; charset=utf-8")))
    out.append(("PUT cart line quantity (idempotent update)", req(
        "PUT", "/api/v1/carts/" + uid("cart") + "/items/TBL-DROPLEAF-OAK", xhr_headers(
            "shop.example.com", ua=IPHONE_UA), js({"quantity": 1, "gift_wrap": True,
                                                   "note": "Leave at back door -- dog's "
                                                           "friendly!"}), JSON)))
    return out


def deletes() -> list[Case]:
    out: list[Case] = []
    out.append(("DELETE a resource", req("DELETE", "/api/v1/addresses/" + uid("addr2"), _app())))
    out.append(("DELETE with a JSON body (bulk delete)", req(
        "DELETE", "/api/v1/notifications", _app(),
        js({"ids": [uid(f"n{k}") for k in range(5)], "reason": "read"}), JSON)))
    out.append(("DELETE all other sessions (query flag)", req(
        "DELETE", "/api/v1/users/me/sessions?all=true&except=current", _app())))
    out.append(("DELETE a git branch ref with slashes", req(
        "DELETE", "/repos/example/shop/git/refs/heads/fix/o-brien-apostrophe", api_headers(
            "api.code.example.com", ua="gh/2.61.0", token="gho_" + token("gho", 36),
            Accept="application/vnd.github+json"))))
    out.append(("DELETE a specific object version", req(
        "DELETE", "/exports/2024/11/inventory%20(final).csv?versionId=3HL4kqtJlcpXroDTDmJ%2BrmS"
                  "pXd3dIbrHY%2BMTRCxf3vjVBH40Nr8X8gdRQBpUMLUo", api_headers(
            "bucket.s3.eu-west-1.amazonaws.example", ua="aws-sdk-go-v2/1.32.3",
            X_Amz_Date="20241105T094213Z",
            Authorization="AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20241105/eu-west-1/"
                          "s3/aws4_request, SignedHeaders=host;x-amz-date, "
                          f"Signature={hexid('s3d', 64)}"))))
    out.append(("DELETE a customer's discount (payments API)", req(
        "DELETE", "/v1/customers/cus_" + token("cus", 14) + "/discount", api_headers(
            "api.payments.example.com", ua="Stripe/v1 PythonBindings/11.2.0",
            token="sk_test_" + token("st", 24)))))
    out.append(("DELETE a pod (kubectl) with propagation policy", req(
        "DELETE", "/api/v1/namespaces/shop/pods/web-7d9f8b6c5-x2k4q", api_headers(
            "k8s.example.internal:6443", ua=KUBECTL, token=token("k8s", 800)),
        js({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background",
            "gracePeriodSeconds": 30}), JSON)))
    return out


def heads_options() -> list[Case]:
    out: list[Case] = []
    out.append(("HEAD: does the object exist? (S3 client)", req(
        "HEAD", "/exports/2024/11/orders_2024-11.csv", api_headers(
            "bucket.s3.eu-west-1.amazonaws.example", ua="Boto3/1.35.54 md/Botocore#1.35.54 "
            "ua/2.0 os/linux#6.8.0 md/arch#x86_64 lang/python#3.12.7",
            X_Amz_Date="20241105T094213Z",
            Authorization="AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20241105/eu-west-1/"
                          f"s3/aws4_request, SignedHeaders=host;x-amz-date, Signature="
                          f"{hexid('s3h', 64)}"))))
    out.append(("HEAD from a link checker", req("HEAD", "/blogs/news/5-myths-about-drop-shipping",
        {"Host": "shop.example.com", "User-Agent": "W3C-checklink/5.0.0 libwww-perl/6.77",
         "Accept": "text/html, application/xhtml+xml;q=0.9, application/vnd.wap.xhtml+xml;q=0.6, "
                   "*/*;q=0.5", "Referer": "https://blog.example.org/2024/11/05/links/"})))
    out.append(("HEAD for a container image manifest (docker pull)", req(
        "HEAD", "/v2/shop/web/manifests/2.14.3", {
            "Host": "registry.example.com", "User-Agent": "docker/27.3.1 go/go1.22.7 git-commit/"
            "41ca978 kernel/6.8.0 os/linux arch/amd64 UpstreamClient(Docker-Client/27.3.1 "
            "\\(linux\\))",
            "Accept": "application/vnd.docker.distribution.manifest.v2+json, application/vnd."
                      "docker.distribution.manifest.list.v2+json, application/vnd.oci.image."
                      "index.v1+json, application/vnd.oci.image.manifest.v1+json, application/"
                      "vnd.docker.distribution.manifest.v1+prettyjws",
            "Authorization": "Bearer " + jwt({"access": [{"type": "repository",
                                                           "name": "shop/web",
                                                           "actions": ["pull"]}]})})))
    out.append(("HEAD with a conditional (cache revalidation)", req("HEAD", "/feed.xml", {
        "Host": "blog.example.org", "User-Agent": "NetNewsWire (RSS Reader; https://netnewswire."
                                                  "com/)", "If-None-Match": '"65a3f-1730800000"',
        "If-Modified-Since": "Tue, 05 Nov 2024 09:42:13 GMT"})))
    out.append(("HEAD / from an uptime check", req("HEAD", "/", {
        "Host": "www.example.com", "User-Agent": "Pingdom.com_bot_version_1.4_(http://www."
                                                 "pingdom.com/)", "Accept": "*/*"})))
    out.append(("OPTIONS to discover allowed methods", req("OPTIONS", "/api/v1/orders/10482",
        api_headers(ua="HTTPie/3.2.4", token=token("hp", 40)))))
    out.append(("OPTIONS from the Windows WebDAV redirector", req("OPTIONS", "/remote.php/dav/", {
        "Host": "cloud.example.com", "User-Agent": "Microsoft-WebDAV-MiniRedir/10.0.22631",
        "translate": "f"})))
    return out


def uploads_and_infra() -> list[Case]:
    out: list[Case] = []
    meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in [
        ("filename", "Q3 report (final) v2.pdf"), ("filetype", "application/pdf"),
        ("relativePath", "null")])
    out.append(("tus resumable upload: create", req("POST", "/files/", {
        **xhr_headers("upload.example.com", ua=FIREFOX_UA), "Tus-Resumable": "1.0.0",
        "Upload-Length": "1048576", "Upload-Metadata": meta})))
    out.append(("tus resumable upload: PATCH a chunk at an offset", req(
        "PATCH", "/files/" + hexid("tus", 32), {
            **xhr_headers("upload.example.com", ua=FIREFOX_UA), "Tus-Resumable": "1.0.0",
            "Upload-Offset": "524288"},
        "%PDF-1.7 chunk 2 of 2: plain text standing in for the rest of the file.\n",
        "application/offset+octet-stream")))
    out.append(("container registry: start a blob upload", req(
        "POST", "/v2/shop/web/blobs/uploads/", {
            "Host": "registry.example.com", "User-Agent": "containerd/v1.7.23",
            "Authorization": "Bearer " + jwt({"access": [{"type": "repository", "name":
                                                           "shop/web", "actions": ["pull",
                                                                                   "push"]}]})},
        "", "application/octet-stream")))
    layer = "layer bytes would go here\n"
    out.append(("container registry: PUT the blob with its digest", req(
        "PUT", "/v2/shop/web/blobs/uploads/" + uid("blob") + "?_state=" + token("state", 120)
               + "%3D%3D&digest=sha256%3A" + hashlib.sha256(layer.encode()).hexdigest(), {
            "Host": "registry.example.com", "User-Agent": "containerd/v1.7.23",
            "Authorization": "Bearer " + jwt({"sub": "ci-bot"})},
        layer, "application/octet-stream")))
    out.append(("Kubernetes list with label and field selectors", req(
        "GET", "/api/v1/namespaces/shop/pods?labelSelector=app%3Dweb%2Ctier%21%3Dcache%2C"
               "environment+in+%28production%2Cstaging%29&fieldSelector=status.phase%3DRunning"
               "&limit=500", api_headers("k8s.example.internal:6443", ua=KUBECTL,
                                         token=token("k8s", 800),
                                         Accept="application/json;as=Table;v=v1;g=meta.k8s.io,"
                                                "application/json;as=Table;v=v1beta1;g=meta.k8s"
                                                ".io,application/json"))))
    out.append(("Kubernetes watch with a resource version", req(
        "GET", "/apis/apps/v1/namespaces/shop/deployments?allowWatchBookmarks=true&resource"
               "Version=482913&timeoutSeconds=413&watch=true", api_headers(
            "k8s.example.internal:6443", ua="argocd-application-controller/v0.0.0 "
                                            "(linux/amd64) kubernetes/$Format",
            token=token("argo", 800)))))
    out.append(("Elasticsearch query DSL search", req("POST", "/products-v2/_search?"
        "filter_path=hits.hits._source,hits.total", api_headers(
            "search.internal:9200", ua="elasticsearch-py/8.15.1"),
        py_json({"query": {"bool": {"must": [{"multi_match": {
            "query": "drop leaf table", "fields": ["name^3", "description"],
            "fuzziness": "AUTO"}}], "filter": [{"range": {"price": {"gte": 100, "lte": 500}}},
                                               {"term": {"in_stock": True}}],
            "must_not": [{"term": {"status": "archived"}}]}},
            "sort": [{"_score": "desc"}, {"price": "asc"}], "size": 24,
            "aggs": {"by_brand": {"terms": {"field": "brand", "size": 10}}}}), JSON)))
    out.append(("action endpoint: cancel an order", req(
        "POST", "/api/v1/orders/10499/cancel", _app(Idempotency_Key=uid("cancel")),
        js({"reason": "customer_request", "note": "Ordered navy, wanted black -- re-ordering.",
            "restock": True, "notify_customer": True}), JSON)))
    return out


def webdav() -> list[Case]:
    out: list[Case] = []
    client = {"Host": "cloud.example.com", "User-Agent": "Mozilla/5.0 (Macintosh) mirall/3.14.1 "
                                                         "(Nextcloud, osx-24.1.0 ClientArchitect"
                                                         "ure: arm64 OsArchitecture: arm64)",
              "Authorization": basic("priya", token("nc", 72))}
    out.append(("WebDAV PROPFIND Depth: 1 (file sync client)", req(
        "PROPFIND", "/remote.php/dav/files/priya/Documents/", {**client, "Depth": "1"},
        '<?xml version="1.0" encoding="utf-8"?>\n<d:propfind xmlns:d="DAV:" xmlns:oc="http://'
        'owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns">\n  <d:prop>\n    '
        "<d:getlastmodified/><d:getcontentlength/><d:getetag/><d:resourcetype/>\n    "
        "<oc:fileid/><oc:permissions/><nc:has-preview/>\n  </d:prop>\n</d:propfind>\n",
        "application/xml; charset=utf-8")))
    out.append(("WebDAV MKCOL with a space and ampersand in the folder name", req(
        "MKCOL", "/remote.php/dav/files/priya/Documents/Taxes%20%26%20Receipts%202024/",
        client)))
    out.append(("WebDAV MOVE with Destination and Overwrite", req(
        "MOVE", "/remote.php/dav/files/priya/Documents/notes%20(1).txt", {
            **client, "Destination": "https://cloud.example.com/remote.php/dav/files/priya/"
                                     "Archive/2024/notes%20%E2%80%93%20Nov.txt",
            "Overwrite": "F"})))
    out.append(("WebDAV COPY of a folder", req(
        "COPY", "/remote.php/dav/files/priya/Templates/", {
            **client, "Destination": "https://cloud.example.com/remote.php/dav/files/priya/"
                                     "Projects/Q3%20launch/", "Depth": "infinity"})))
    out.append(("CalDAV REPORT calendar-query for a time range", req(
        "REPORT", "/calendars/zoe/work/", {
            "Host": "dav.example.com", "User-Agent": "DAVx5/4.4.3.2-ose (2024/10/28; dav4jvm; "
                                                     "okhttp/4.12.0) Android/14",
            "Authorization": basic("zoe", token("cal", 24)), "Depth": "1"},
        '<?xml version="1.0" encoding="UTF-8"?>\n<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:'
        'ietf:params:xml:ns:caldav">\n  <D:prop><D:getetag/><C:calendar-data/></D:prop>\n  '
        '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">\n    '
        '<C:time-range start="20241101T000000Z" end="20241201T000000Z"/>\n  '
        "</C:comp-filter></C:comp-filter></C:filter>\n</C:calendar-query>\n",
        "application/xml; charset=utf-8")))
    return out


def main() -> None:
    groups = {"patch": patches(), "put": puts(), "delete": deletes(),
              "head-options": heads_options(), "uploads-infra": uploads_and_infra(),
              "webdav": webdav()}
    tests = []
    for group, items in groups.items():
        for desc, inp in items:
            placement = "json" if "json" in str(inp.get("headers", {}).get("Content-Type", "")) \
                else "path"
            tests.append(benign(inp, KIND, f"{inp['method']}: {desc}", f"placement:{placement}",
                                f"method:{inp['method']}", f"group:{group}"))
    write("benign/0009-rest-methods.yaml", 9, "Benign: REST and WebDAV calls with PATCH, PUT, "
          "DELETE, HEAD, OPTIONS and friends", tests)


if __name__ == "__main__":
    main()
