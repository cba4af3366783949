"""Local file inclusion and path traversal (``1060-lfi.yaml``).

Traversal sequences (``../``, ``..\\``) in every spelling servers have been
fooled by: percent-encoded once and twice, overlong UTF-8 (``%c0%af``), IIS
``%u`` escapes, ``....//`` (survives one strip of ``../``), ``..;/``
(Tomcat), mixed separators; absolute paths of the files attackers read
(``/etc/passwd``, ``/proc/self/environ``, keys, logs, ``win.ini``,
``boot.ini``, the SAM hive); NUL-byte truncation of an appended extension;
and dot-files and config files fetched through the URL path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from common import (
    BROWSER_HEADERS,
    Placement,
    case,
    in_cookie,
    in_form,
    in_header,
    in_json,
    in_multipart,
    in_path,
    in_query,
    in_xml,
    request,
    write,
)
from common import spread as common_spread

PLACES: dict[str, tuple[str, Placement]] = {
    "query": ("query", in_query("file", "/download")),
    "query-page": ("query", in_query("page", "/index.php")),
    "form": ("form", in_form("template", "/admin/settings")),
    "json": ("json", in_json("path", "/api/v1/files/read")),
    "xml": ("xml", in_xml("document", "/api/v1/render")),
    "multipart": ("multipart", in_multipart("attachment_path", "/upload")),
    "cookie": ("cookie", in_cookie("template", "/account")),
    "path": ("path", in_path("/static/")),
    "referer": ("header", in_header("Referer", "/")),
}

ROTATION = ["query", "json", "path", "form", "query-page", "cookie", "xml", "multipart",
            "query", "form"]


def spread(payloads: Sequence[str], rotation: Sequence[str], per: int,
           encodings: Sequence[str] = ("plain",), start: int = 0) -> list[dict[str, Any]]:
    return common_spread(payloads, rotation, per, places=PLACES, family="lfi",
                         encodings=encodings, start=start)


# Relative traversal to a file outside the web root.
TRAVERSAL = [
    "../../../../etc/passwd",
    "../../../../../../etc/shadow",
    "..\\..\\..\\..\\windows\\win.ini",
    "..\\..\\..\\boot.ini",
    "../../../../../../../../../../../../etc/hosts",
    "/var/www/html/../../../etc/passwd",
    "images/../../../../etc/passwd",
    "..//..//..//etc/passwd",
    "..///..///..///etc/group",
    "\\..\\..\\..\\windows\\system.ini",
    "..\\/..\\/..\\/etc/passwd",
    "../../../../../../var/log/apache2/access.log",
    "../../../../var/log/nginx/error.log",
    "../../../../home/deploy/.ssh/id_rsa",
    "../../../.env",
    "../../../../root/.aws/credentials",
    "../../WEB-INF/web.xml",
    "..\\..\\..\\inetpub\\wwwroot\\web.config",
    "../../../../../../windows/system32/drivers/etc/hosts",
    "../../../../proc/self/environ",
    "../../../config/database.yml",
    "../../../../../../../../tmp/sess_abc123",
]

# Traversal that survives filters: encodings and odd separators.
TRAVERSAL_EVASION = [
    "....//....//....//etc/passwd",
    "....\\/....\\/....\\/etc/passwd",
    "..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "..%252f..%252f..%252fetc%252fpasswd",
    "%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "..%c0%af..%c0%af..%c0%afetc/passwd",
    "%c0%ae%c0%ae/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
    "..%c1%9c..%c1%9c..%c1%9cboot.ini",
    "..%5c..%5c..%5cwindows%5cwin.ini",
    "..%u2215..%u2215..%u2215etc%u2215passwd",
    "%uff0e%uff0e%u2215%uff0e%uff0e%u2215etc%u2215passwd",
    "..;/..;/..;/etc/passwd",
    ".../.../.../.../etc/passwd",
    "..%00/..%00/etc/passwd",
    "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "..%2F..%2F..%2F..%2Fwindows%2Fwin.ini",
]

# Absolute paths of files worth reading.
ABSOLUTE = [
    "/etc/passwd",
    "/etc/shadow",
    "/proc/self/environ",
    "/proc/self/cmdline",
    "/proc/version",
    "/proc/self/status",
    "C:\\Windows\\win.ini",
    "C:\\boot.ini",
    "c:/windows/system32/drivers/etc/hosts",
    "C:\\Windows\\System32\\config\\SAM",
    "C:\\Windows\\repair\\sam",
    "C:\\Windows\\Panther\\Unattend.xml",
    "/root/.ssh/id_rsa",
    "/root/.bash_history",
    "/home/ubuntu/.ssh/authorized_keys",
    "/etc/mysql/my.cnf",
    "/etc/httpd/conf/httpd.conf",
    "/etc/nginx/nginx.conf",
    "/var/run/secrets/kubernetes.io/serviceaccount/token",
    "/etc/issue",
    "/etc/crontab",
    "/etc/ssh/sshd_config",
    "/./././././etc/passwd",
    "/etc//passwd",
    "/usr/local/apache2/conf/httpd.conf",
    "/WEB-INF/web.xml",
    "/var/lib/mysql/mysql/user.MYD",
    "file:/etc/passwd",
    "/proc/self/fd/3",
    "/etc/sudoers",
]

# NUL truncation of an extension the application appends.
NULL_BYTE = [
    "../../../../etc/passwd\x00",
    "../../../../etc/passwd\x00.jpg",
    "/etc/passwd\x00.html",
    "..\\..\\..\\windows\\win.ini\x00.txt",
    "../../../../etc/passwd%00.png",
    "../../../etc/shadow%00",
]


def path_requests() -> list[dict[str, Any]]:
    """Traversal and sensitive files straight in the request path."""
    raw = [
        ("/static/../../../../etc/passwd", "raw traversal in the path"),
        ("/static/..%2f..%2f..%2f..%2fetc%2fpasswd", "encoded slashes in the path"),
        ("/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "encoded dots in the path"),
        ("/images/..%5c..%5c..%5cwindows%5cwin.ini", "encoded backslashes in the path"),
        ("/cgi-bin/.%2e/.%2e/.%2e/.%2e/etc/passwd", "CVE-2021-41773 style"),
        ("/cgi-bin/.%%32%65/.%%32%65/.%%32%65/etc/passwd", "CVE-2021-42013 style"),
        ("/assets/..%252f..%252f..%252fetc%252fpasswd", "double-encoded slashes in the path"),
        ("/.env", "dotenv file"),
        ("/.git/config", "git metadata"),
        ("/app/.htpasswd", "htpasswd"),
        ("/backup/.aws/credentials", "AWS credentials file"),
        ("/WEB-INF/web.xml", "Java web descriptor"),
        ("/wp-config.php.bak", "WordPress config backup"),
        ("/.ssh/id_rsa", "SSH private key"),
        ("/static/..;/..;/WEB-INF/web.xml", "Tomcat path parameter traversal"),
        ("/.svn/entries", "subversion metadata"),
    ]
    return [case(request("GET", uri, BROWSER_HEADERS), family="lfi", attack=True, desc=desc,
                 tags=["placement:path", "encoding:plain"]) for uri, desc in raw]


def main() -> None:
    tests: list[dict[str, Any]] = []
    tests += spread(TRAVERSAL, ROTATION, per=2)
    tests += spread(TRAVERSAL_EVASION, ROTATION, per=2, start=3)
    tests += spread(ABSOLUTE, ROTATION, per=1, start=1)
    tests += spread(NULL_BYTE, ["query", "json", "form", "query-page"], per=1)
    tests += path_requests()
    # The server decodes twice, or takes %uXXXX.
    again = ["../../../../etc/passwd", "..\\..\\..\\windows\\win.ini", "/etc/shadow",
             "/proc/self/environ", "....//....//etc/passwd", "C:\\boot.ini"]
    tests += spread(again, ["query", "form", "json"], per=1, encodings=("double-url",))
    tests += spread(again[:4], ["query", "cookie"], per=1, encodings=("unicode-u",))
    tests += spread(["..\\..\\..\\Windows\\Win.ini", "C:\\WINDOWS\\System32\\Config\\SAM"],
                    ["query", "form"], per=1, encodings=("mixed-case",))
    write("attacks/1060-lfi.yaml", 1060000,
          "Local file inclusion and path traversal: encodings, sensitive files, NUL truncation",
          tests)


if __name__ == "__main__":
    main()
