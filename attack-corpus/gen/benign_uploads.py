"""Benign traffic: file uploads with everyday files and odd but legal file names.

Writes ``benign/0006-uploads.yaml`` (kind ``uploads``). Each file goes up twice:
from a browser form (Chrome or Firefox multipart with the page's other
fields) and from an API client (curl- or requests-style multipart with a bearer
token). Files are text, CSV, TSV, JSON, YAML, Markdown, logs, calendars,
vCards, subtitles, SVG, source code, a SQL dump for a database admin tool's
import page, a small GIF and a small PDF; names have spaces, brackets,
apostrophes, quotes, percent signs, many dots, a leading dash, emoji and
non-Latin scripts.
"""

# File names and contents in other scripts and with typographic dashes are the point.
# ruff: noqa: RUF001

from __future__ import annotations

import base64
import json
from typing import Any

from benign_lib import (
    BOUNDARY_CHROME,
    BOUNDARY_CURL,
    BOUNDARY_FIREFOX,
    CHROME_UA,
    FIREFOX_UA,
    SAFARI_UA,
    benign,
    multipart,
    req,
    site_headers,
    token,
)
from common import write

KIND = "uploads"

GIF_1X1 = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def small_pdf(text: str) -> bytes:
    """A one-page PDF. go-ftw turns each ``\\n`` of a multipart body into ``\\r\\n``, so the
    xref offsets are counted for CRLF line ends and the file is written with ``\\n``."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = "%PDF-1.4\n"
    offsets = []
    for n, obj in enumerate(objects, start=1):
        offsets.append(len(out.replace("\n", "\r\n").encode()))
        out += f"{n} 0 obj\n{obj}\nendobj\n"
    xref = len(out.replace("\n", "\r\n").encode())
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n"
    out += "".join(f"{off:010d} 00000 n \n" for off in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF"
    return out.encode("latin-1")


# (file name, content type, content, where a browser uploads it, what it is)
FILES: list[tuple[str, str, str | bytes, str, str]] = [
    ("notes.txt", "text/plain",
     "Meeting notes -- 5 Nov\n\n* Budget: approved (finally!)\n* Hiring: 2 devs, 1 designer\n"
     "* Next: Tue @ 3pm, Room 4.12\n\nTODO: send minutes to all@ by EOD.",
     "/support/tickets/5521/attachments", "plain-text notes"),
    ("Q3 report (final) v2.csv", "text/csv",
     'Region,Quarter,Revenue,Notes\n"North, East",Q3,"1,204,500.00","Up 12% -- see ""Upsell"" '
     'tab"\nSouth,Q3,980000.5,\nWest,Q3,-1200,"Refunds > sales (recall)"',
     "/reports/import", "CSV with quoted commas and escaped quotes"),
    ("contacts_export_2024-11-05.csv", "text/csv",
     "Name,Given Name,Family Name,E-mail 1 - Type,E-mail 1 - Value,Phone 1 - Value\n"
     "Siobhán O'Brien,Siobhán,O'Brien,* Work,siobhan.obrien@example.ie,+353 1 555 0142\n"
     "\"D'Angelo Jr., Dwayne\",Dwayne,D'Angelo Jr.,Home,dwayne.dangelo@example.com,"
     "(555) 010-0199\n李雷,雷,李,,li.lei@example.cn,+86 10 5555 0100",
     "/contacts/import", "address-book export"),
    ("O'Brien – invoice #42.txt", "text/plain",
     "INVOICE #42\nBill to: O'Brien & Daughters Ltd.\n\n2 x Rock & Roll Tee @ €24.99 = €49.98\n"
     "VAT (23%): €11.50\nTOTAL: €61.48\n\nPayable within 30 days. Thank you!",
     "/billing/uploads", "file name with apostrophe, en dash and hash"),
    ("CV – Zoë Ångström.txt", "text/plain",
     "Zoë Ångström\nStockholm · zoe@angstrom.example.se\n\nEXPERIENCE\n2019– Senior Engineer, "
     "Ångström AB\n  - Led migration of 40+ services to Kubernetes\n  - Cut p95 latency 38%\n\n"
     "SKILLS: Go, Python, SQL (PostgreSQL), Terraform",
     "/careers/apply/4471/resume", "CV with accented file name"),
    ("данные_продаж.csv", "text/csv",
     "Дата;Товар;Количество;Сумма\n01.11.2024;Куртка зимняя;2;15 990,00\n"
     "02.11.2024;Чехол для телефона;5;2 495,50",
     "/reports/import", "Cyrillic file name, semicolon CSV with decimal commas"),
    ("写真リスト.txt", "text/plain",
     "2024年11月 撮影分\n1. 東京タワー（夜景）\n2. 富士山・河口湖\n3. 京都 清水寺",
     "/albums/upload", "Japanese file name and content"),
    ("file.with.many.dots.json", "application/json",
     '{"version": "1.2.3", "name": "my.app.config", "features": {"beta.search": true, '
     '"dark.mode": false}, "servers": ["eu-1.example.com", "us-2.example.com"]}',
     "/settings/import", "JSON file with several dots in its name"),
    ("-leading-dash.txt", "text/plain", "File names can start with a dash; shells need '--'.",
     "/files/upload", "leading dash in the file name"),
    ("100%_done.txt", "text/plain", "Project status: 100% done (well, 99%).",
     "/files/upload", "percent sign in the file name"),
    ("a&b;c=d.txt", "text/plain", "Ampersand, semicolon and equals sign are legal in names.",
     "/files/upload", "ampersand, semicolon and equals sign in the file name"),
    ("[draft] notes.md", "text/markdown",
     "# Draft\n\n- [ ] outline\n- [x] intro\n\n> \"Write drunk, edit sober\" -- maybe not.\n",
     "/docs/import", "brackets in the file name"),
    ("notes (1).txt", "text/plain", "Second download of the same notes file.",
     "/files/upload", "browser duplicate-download name"),
    ("He said \"hi\".txt", "text/plain", "Double quotes in a file name go as %22.",
     "/files/upload", "double quotes in the file name"),
    ("emoji 😀 summary 🎉.txt", "text/plain", "Party plan 🎉: cake, balloons, playlist 🎶.",
     "/files/upload", "emoji in the file name"),
    ("file   with   spaces.txt", "text/plain", "Three spaces between each word.",
     "/files/upload", "runs of spaces in the file name"),
    ("report.final.FINAL.v3 (Bob's edits).txt", "text/plain",
     "Exec summary: revenue up; costs flat. Bob: \"let's cut slide 7\".",
     "/files/upload", "the classic final-final file name"),
    ("a" * 60 + "-really-long-name-" + "b" * 60 + ".txt", "text/plain", "Long names are legal.",
     "/files/upload", "140-character file name"),
    ("config.json", "application/json",
     '{\n  "theme": "dark",\n  "locale": "en-GB",\n  "shortcuts": {"search": "Ctrl+K"},\n'
     '  "webhook": "https://hooks.example.org/x?token=abc&env=prod",\n  "retries": 3,\n'
     '  "backoff": 1.5e0,\n  "debug": false\n}\n',
     "/settings/import", "settings export"),
    ("package.json", "application/json",
     '{\n  "name": "@example/shop-web",\n  "version": "2.14.3",\n  "private": true,\n'
     '  "scripts": {\n    "dev": "vite",\n    "build": "tsc -b && vite build",\n'
     '    "test": "vitest run --coverage",\n    "lint": "eslint . --ext .ts,.tsx"\n  },\n'
     '  "dependencies": {"react": "^18.3.1", "react-dom": "^18.3.1"}\n}\n',
     "/projects/42/files", "npm manifest"),
    ("settings.yaml", "application/x-yaml",
     "app:\n  name: \"Example Shop\"\n  url: https://shop.example.com\n  features:\n"
     "    - search\n    - reviews\ndatabase:\n  host: db.internal\n  port: 5432\n"
     "  pool: {min: 2, max: 10}\n",
     "/projects/42/files", "YAML configuration"),
    ("README.md", "text/markdown",
     "# shop-web\n\nStorefront for Example Shop.\n\n## Setup\n\n```bash\nnpm ci\n"
     "cp .env.example .env\nnpm run dev\n```\n\nOpen http://localhost:5173/ and log in with "
     "`demo@example.com` / `demo`.\n",
     "/projects/42/files", "README with a shell block"),
    ("server.log", "text/plain",
     '203.0.113.7 - - [05/Nov/2024:10:42:13 +0000] "GET /search?q=union+jack HTTP/1.1" 200 5120 '
     '"https://shop.example.com/" "Mozilla/5.0"\n203.0.113.7 - - [05/Nov/2024:10:42:15 +0000] '
     '"POST /cart/add.js HTTP/1.1" 500 87 "-" "Mozilla/5.0"\n2024-11-05T10:42:15Z ERROR '
     "checkout: Traceback (most recent call last):\n  File \"/app/cart.py\", line 88, in add\n"
     "KeyError: 'variant_id'",
     "/support/tickets/5521/attachments", "access and error log excerpt for support"),
    ("meeting.ics", "text/calendar",
     "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Example Corp//Calendar 1.0//EN\nBEGIN:VEVENT\n"
     "UID:" + token("ics", 20) + "@example.com\nDTSTART;TZID=Europe/Berlin:20241112T100000\n"
     "DTEND;TZID=Europe/Berlin:20241112T113000\nRRULE:FREQ=WEEKLY;BYDAY=TU\n"
     "SUMMARY:Design review: checkout v2\nLOCATION:Room 4.12 \\, 4th floor\n"
     "DESCRIPTION:Agenda:\\n1) Recap\\n2) Open questions\nEND:VEVENT\nEND:VCALENDAR",
     "/calendar/import", "iCalendar event"),
    ("Jane Doe.vcf", "text/vcard",
     "BEGIN:VCARD\nVERSION:3.0\nN:Doe;Jane;;Dr.;\nFN:Dr. Jane Doe\nORG:Smith & Sons\\, Inc.\n"
     "TEL;TYPE=CELL:+1-555-010-0199\nEMAIL:jane.doe@example.com\n"
     "ADR;TYPE=WORK:;;1600 Amphitheatre Pkwy;Mountain View;CA;94043;USA\nEND:VCARD",
     "/contacts/import", "vCard"),
    ("episode 01 (en).srt", "application/x-subrip",
     "1\n00:00:01,000 --> 00:00:03,500\n- Where were you?!\n- At O'Malley's... sorry.\n\n2\n"
     "00:00:04,000 --> 00:00:06,000\n<i>[door slams]</i>",
     "/videos/881/subtitles", "subtitles with italics tags"),
    ("sitemap.xml", "text/xml",
     '<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/'
     'sitemap/0.9">\n  <url><loc>https://shop.example.com/</loc><priority>1.0</priority></url>\n'
     "  <url><loc>https://shop.example.com/products/rock-%26-roll-tee?variant=1&amp;ref=sm</loc>"
     "</url>\n</urlset>\n",
     "/seo/sitemaps", "XML sitemap"),
    ("logo.svg", "image/svg+xml",
     '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 120 40" width="120" height="40">'
     '<rect width="120" height="40" rx="6" fill="#111"/><text x="60" y="26" fill="#fff" '
     'font-family="Helvetica" font-size="16" text-anchor="middle">Example</text></svg>',
     "/brand/assets", "plain SVG logo"),
    ("icon (Illustrator export).svg", "image/svg+xml",
     '<?xml version="1.0" encoding="utf-8"?>\n<!-- Generator: Adobe Illustrator 27.0.0, SVG '
     "Export Plug-In . SVG Version: 6.00 Build 0)  -->\n<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG "
     '1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n<svg version="1.1" '
     'id="Layer_1" xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
     ' x="0px" y="0px" viewBox="0 0 24 24" xml:space="preserve">\n<path d="M12 2L2 22h20L12 2z"'
     "/>\n</svg>\n",
     "/brand/assets", "SVG as Illustrator exports it (public DOCTYPE)"),
    ("messages_fr.po", "text/x-gettext-translation",
     'msgid ""\nmsgstr ""\n"Language: fr\\n"\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
     'msgid "Add to cart"\nmsgstr "Ajouter au panier"\n\nmsgid "%(count)s item"\n'
     'msgid_plural "%(count)s items"\nmsgstr[0] "%(count)s article"\n'
     'msgstr[1] "%(count)s articles"\n',
     "/i18n/import", "gettext catalogue with printf placeholders"),
    ("kontoauszug_2024-10.csv", "text/csv",
     "Buchungstag;Verwendungszweck;Betrag;Währung\n01.10.2024;\"Miete Oktober; Whg. 3\";"
     "-1.250,00;EUR\n15.10.2024;Gehalt;3.480,55;EUR\n20.10.2024;\"Amazon *Mktp DE\";-49,99;EUR",
     "/finance/import", "German bank statement CSV"),
    ("inventory.tsv", "text/tab-separated-values",
     "sku\tname\tqty\tlocation\nFLAG-UJ-3X5\tUnion Jack Flag 3'x5'\t25\tA-12\n"
     "PLT-SNAKE-12\tSnake Plant, 1' tall\t8\tGH-2",
     "/inventory/import", "tab-separated inventory"),
    (".env.example", "application/octet-stream",
     "APP_ENV=local\nAPP_URL=http://localhost:8000\nDATABASE_URL=postgres://app:app@localhost:"
     "5432/app\nMAIL_FROM=\"Example Shop <no-reply@example.com>\"\n",
     "/projects/42/files", "dotfile template for a code project"),
    ("homework3.py", "text/x-python",
     "# Homework 3 - Fibonacci\n\ndef fib(n: int) -> int:\n    a, b = 0, 1\n    for _ in "
     "range(n):\n        a, b = b, a + b\n    return a\n\n\nif __name__ == \"__main__\":\n"
     "    print([fib(i) for i in range(10)])\n",
     "/courses/cs101/assignments/3/submit", "student's Python homework"),
    ("index.html", "text/html",
     "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n  <meta charset=\"utf-8\">\n  <title>My "
     "portfolio</title>\n  <link rel=\"stylesheet\" href=\"styles.css\">\n</head>\n<body>\n"
     "  <h1>Hi, I'm Priya 👋</h1>\n  <button id=\"theme\">Toggle theme</button>\n  <script>\n"
     "    document.getElementById('theme').addEventListener('click', () => {\n"
     "      document.body.classList.toggle('dark');\n    });\n  </script>\n</body>\n</html>\n",
     "/sites/priya/deploy", "static site page with an inline script"),
    ("styles.css", "text/css",
     "body { font: 16px/1.5 system-ui, sans-serif; }\n.dark { background: #111; color: #eee; }\n"
     "a[href^=\"http\"]::after { content: \" \\2197\"; }\n",
     "/sites/priya/deploy", "stylesheet"),
    ("shop_backup_2024-11-05.sql", "application/sql",
     "-- MySQL dump 10.13  Distrib 8.0.39\n--\n-- Table structure for table `products`\n--\n\n"
     "DROP TABLE IF EXISTS `products`;\nCREATE TABLE `products` (\n  `id` int NOT NULL "
     "AUTO_INCREMENT,\n  `name` varchar(255) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB "
     "DEFAULT CHARSET=utf8mb4;\n\nINSERT INTO `products` VALUES (1,'Rock & Roll Tee'),"
     "(2,'Union Jack Flag 3\\'x5\\'');\n",
     "/phpmyadmin/import.php", "SQL dump uploaded to a database admin tool's import page"),
    ("chat-export.json", "application/json",
     '{"channel": "#general", "messages": [{"user": "U024BE7LH", "ts": "1733000000.000100", '
     '"text": "lunch @ 12:30? :pizza:"}, {"user": "U0G9QF9C6", "ts": "1733000060.000200", '
     '"text": "<@U024BE7LH> yes!! <https://maps.example.com/?q=Luigi%27s|Luigi\'s>"}]}',
     "/archive/import", "chat export"),
    ("id_ed25519.pub", "application/octet-stream",
     "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + token("ssh", 43) + " priya@laptop-2024",
     "/settings/keys/upload", "SSH public key"),
    ("Dockerfile", "application/octet-stream",
     "FROM node:20-alpine AS build\nWORKDIR /src\nCOPY . .\nRUN npm ci && npm run build\n\n"
     "FROM nginx:1.27-alpine\nCOPY --from=build /src/dist /usr/share/nginx/html\n",
     "/projects/42/files", "file without an extension"),
    ("avatar.gif", "image/gif", GIF_1X1, "/settings/profile/avatar", "tiny GIF image"),
    ("Invoice 2024-11.pdf", "application/pdf", small_pdf("Invoice 2024-11 - Total EUR 61.48"),
     "/billing/uploads", "small PDF"),
]


def _browser(i: int, name: str, ctype: str, content: str | bytes, path: str, what: str
             ) -> dict[str, Any]:
    host = "app.example.io"
    chrome = i % 3 != 1
    parts: list[tuple[str, str] | tuple[str, str, str, str | bytes]] = [
        ("authenticity_token", token(f"up{i}", 86) + "=="),
        ("description", f"Uploading {what} -- see attached."),
        ("file", name, ctype, content), ("visibility", "private")]
    mctype, body = multipart(parts, BOUNDARY_CHROME if chrome else BOUNDARY_FIREFOX)
    headers = site_headers(host, ua=[CHROME_UA, FIREFOX_UA, SAFARI_UA][i % 3],
                           Origin=f"https://{host}", Referer=f"https://{host}{path}",
                           Sec_Fetch_Site="same-origin", Sec_Fetch_Mode="navigate",
                           Sec_Fetch_Dest="document", Sec_Fetch_User="?1",
                           Cookie=f"_app_session={token(f'sess{i}', 120)}")
    return req("POST", path, headers, body, mctype)


def _api(i: int, name: str, ctype: str, content: str | bytes) -> dict[str, Any]:
    if i % 2:
        mctype, body = multipart([("file", name, ctype, content),
                                  ("folder", "/Shared/Imports 2024"), ("overwrite", "false")],
                                 BOUNDARY_CURL)
        headers = {"Host": "api.files.example.com", "User-Agent": "curl/8.5.0",
                   "Accept": "*/*", "Authorization": "Bearer " + token(f"api{i}", 40)}
    else:
        metadata = json.dumps({"name": name, "parents": ["root"]}, ensure_ascii=False)
        mctype, body = multipart([("metadata", metadata), ("file", name, ctype, content)],
                                 "8d1b3c0f5e2a4b6c9e7f1a2b3c4d5e6f")
        headers = {"Host": "api.files.example.com", "User-Agent": "python-requests/2.32.3",
                   "Accept": "*/*", "Accept-Encoding": "gzip, deflate",
                   "Authorization": "Bearer " + token(f"api{i}", 40)}
    return req("POST", "/v1/files?uploadType=multipart", headers, body, mctype)


def main() -> None:
    tests = []
    for i, (name, ctype, content, path, what) in enumerate(FILES):
        if isinstance(content, bytes) and ctype != "application/pdf" and b"\n" in content:
            raise ValueError(f"{name}: go-ftw would turn its LF bytes into CRLF")
        tests.append(benign(_browser(i, name, ctype, content, path, what), KIND,
                            f"browser upload, {what}: {name}", "placement:multipart"))
        tests.append(benign(_api(i, name, ctype, content), KIND,
                            f"API client upload, {what}: {name}", "placement:multipart"))
    write("benign/0006-uploads.yaml", 6, "Benign: multipart file uploads of everyday files "
          "with odd but legal names, from browsers and API clients", tests)


if __name__ == "__main__":
    main()
