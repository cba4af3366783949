"""PHP injection: ``attacks/1090-php.yaml``.

Code injected where PHP evaluates it (eval sinks, preg_replace /e,
create_function, template or log poisoning, uploads written as .php):
``<?php`` payloads, command sinks (system, passthru, shell_exec, exec, popen,
proc_open, pcntl_exec), eval/assert of decoded text, callbacks named by
string, dynamic function names, breaking out of a PHP string; stream
wrappers (php://input, php://filter, phar://, expect://, data://, zip://);
serialized PHP objects (plain and base64 in a cookie). PHP function names are
case-insensitive, so the mixed-case variants are real.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote, quote_plus

from attacks_xss import ftw_safe
from common import BROWSER_HEADERS, case, cases, request, write

FAMILY = "php"

CODE: list[str] = [
    "<?php system($_GET['cmd']); ?>",
    "<?php echo shell_exec('id'); ?>",
    "<?= `id` ?>",
    "<?php eval($_POST['x']); ?>",
    "<?php @eval(base64_decode($_POST['x'])); ?>",
    "<?php passthru($_REQUEST['c']); ?>",
    "<?php file_put_contents('s.php', '<?php system($_GET[0]);'); ?>",
    "system('id');",
    "passthru('cat /etc/passwd');",
    "shell_exec('whoami')",
    "exec('id', $out);",
    "popen('id', 'r');",
    "proc_open('id', array(), $pipes);",
    "pcntl_exec('/bin/sh');",
    "eval($_REQUEST['c']);",
    "assert($_GET['a']);",
    "phpinfo();",
    "eval(base64_decode('c3lzdGVtKCdpZCcpOw=='));",
    "eval(gzinflate(base64_decode('K64sLknN1VDKTFEqtbJSKkhMTlUAAA==')));",
    "eval(str_rot13('flfgrz(\"vq\");'));",
    "create_function('', 'system(\"id\");')",
    "call_user_func('system', 'id')",
    "array_map('system', array('id'))",
    "preg_replace('/.*/e', 'system(\"id\")', '')",
    "${system('id')}",
    "{${phpinfo()}}",
    "$_GET[0]($_GET[1])",
    "$a='sys'.'tem';$a('id');",
    "('sys'.'tem')('id');",
    "chr(115).chr(121).chr(115).chr(116).chr(101).chr(109)",
    "\";system('id');//",
    "';phpinfo();//",
    "\"\\x73ystem\"('id');",
    "usort($_GET, 'system');",
    "<?php echo `whoami`; ?>",
    "$f=$_GET['f'];$f($_GET['a']);",
    "<?php include($_GET['p']); ?>",
    "print(`id`);",
]

WRAPPERS: list[str] = [
    "php://input",
    "php://filter/convert.base64-encode/resource=index.php",
    "php://filter/read=string.rot13/resource=config.php",
    "php://filter/convert.iconv.utf-8.utf-16/resource=/etc/passwd",
    "phar://uploads/avatar.jpg/test.txt",
    "expect://id",
    "data://text/plain;base64,PD9waHAgc3lzdGVtKCRfR0VUWydjbWQnXSk7ID8+",
    "zip://uploads/shell.zip#shell.php",
    "compress.zlib://php://input",
    "php://fd/3",
]

SERIALIZED: list[str] = [
    'O:8:"stdClass":1:{s:4:"test";s:3:"abc";}',
    'a:2:{i:0;O:4:"User":1:{s:5:"admin";b:1;}i:1;s:1:"x";}',
    'O:+8:"stdClass":0:{}',
    'C:11:"ArrayObject":37:{x:i:0;a:0:{};m:a:0:{}}',
    ('O:40:"Illuminate\\Broadcasting\\PendingBroadcast":1:{s:9:"\x00*\x00events";'
     'O:15:"Faker\\Generator":1:{s:13:"\x00*\x00formatters";a:1:{s:8:"dispatch";'
     's:6:"system";}}}'),
]


def build() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = []
    rot = ["query", "form", "json", "multipart", "cookie", "xml", "header"]
    for i, p in enumerate(CODE):
        tests += cases([p], family=FAMILY, placements=[rot[i % 7]])
        if i % 4 == 0:
            enc = ["double-url", "mixed-case", "unicode-u", "html-entity"][(i // 4) % 4]
            where = ["form", "query", "json"][(i // 3) % 3]
            tests += cases([p], family=FAMILY, placements=[where], encodings=[enc])
    for i, p in enumerate(WRAPPERS):
        tests += cases([p], family=FAMILY, placements=[["query", "form", "json"][i % 3]])
        if i % 3 == 0:
            tests += cases([p], family=FAMILY, placements=["query"], encodings=["double-url"])
    for i, p in enumerate(SERIALIZED):
        where = [["cookie", "form"], ["query", "json"], ["form", "multipart"]][i % 3]
        tests += cases([p], family=FAMILY, placements=[w for w in where
                                                       if "\x00" not in p or w != "cookie"])
    tests += hand_built()
    return tests


def hand_built() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(inp: dict[str, Any], desc: str, where: str, enc: str = "plain") -> None:
        out.append(case(inp, family=FAMILY, attack=True, desc=desc,
                        tags=[f"placement:{where}", f"encoding:{enc}"]))

    # File inclusion through a wrapper in the path and a page parameter.
    add(request("GET", "/index.php?page=php://filter/convert.base64-encode/resource=config"),
        "php://filter in ?page= (raw in the URL)", "query")
    add(request("GET", "/index.php?file=expect%3A%2F%2Fls"), "expect:// in ?file=", "query")
    add(request("POST", "/index.php?page=php://input",
                {**BROWSER_HEADERS, "Content-Type": "text/plain"},
                "<?php system('id'); ?>"),
        "php://input with the code in a text/plain body", "query")
    # Log poisoning: code in the User-Agent.
    add(request("GET", "/", {**BROWSER_HEADERS, "User-Agent": "<?php system($_GET['c']); ?>"}),
        "PHP code in User-Agent (log poisoning)", "header")
    # Serialized objects base64-encoded in a cookie and a parameter.
    obj = 'O:8:"stdClass":1:{s:5:"admin";b:1;}'
    add(request("GET", "/account", {**BROWSER_HEADERS,
                                    "Cookie": "session=abc; prefs="
                                              + quote(base64.b64encode(obj.encode()).decode())}),
        "base64 serialized PHP object in a cookie", "cookie", "base64")
    gadget = ('O:29:"Monolog\\Handler\\SyslogUdpHandler":1:{s:9:"\x00*\x00socket";'
              'O:29:"Monolog\\Handler\\BufferHandler":1:{s:10:"\x00*\x00handler";'
              'O:29:"Monolog\\Handler\\BufferHandler":0:{}}}')
    add(request("POST", "/cart/restore", {**BROWSER_HEADERS,
                                          "Content-Type": "application/x-www-form-urlencoded"},
                "state=" + quote_plus(base64.b64encode(gadget.encode()).decode())),
        "base64 serialized Monolog gadget in a form field", "form", "base64")
    # Upload of a PHP webshell: code in a multipart text field named like a file.
    boundary = "----BastionPhpBoundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n"
            f"<?php if(isset($_REQUEST['cmd'])){{ echo '<pre>'; system($_REQUEST['cmd']); }} ?>"
            f"\r\n--{boundary}--\r\n")
    add(request("POST", "/upload", {**BROWSER_HEADERS,
                                    "Content-Type": f"multipart/form-data; boundary={boundary}"},
                body),
        "classic webshell in a multipart field", "multipart")
    return out


def main() -> None:
    write("attacks/1090-php.yaml", 1090000, "PHP injection", ftw_safe(build()))


if __name__ == "__main__":
    main()
