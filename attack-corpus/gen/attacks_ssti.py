"""Server-side template injection: ``attacks/1110-ssti.yaml``.

Probes and payloads for Jinja2 and Tornado, Django, Twig, Smarty,
Freemarker, Velocity, Thymeleaf / Spring EL, ERB, Mako, Razor, Pug,
Nunjucks and Handlebars, each in a few placements (query, form, JSON,
multipart, XML, cookie, header, path), some double-URL, %u or
HTML-entity encoded (applications that decode twice, IIS, a value that is
HTML-decoded before it reaches the template). No mixed case: template
languages are case-sensitive.
"""

from __future__ import annotations

from typing import Any

from attacks_xss import ftw_safe
from common import ENCODINGS, case, cases, header_safe, request, write

FAMILY = "ssti"

PAYLOADS: list[str] = [
    # probes
    "{{7*7}}",
    "{{7*'7'}}",
    "${7*7}",
    "#{7*7}",
    "*{7*7}",
    "[[${7*7}]]",
    "<%= 7*7 %>",
    "@(7*7)",
    "{{=7*7}}",
    "${{7*7}}",
    "{7*7}",
    # Jinja2 / Flask / Tornado / Django
    "{{config}}",
    "{{config.items()}}",
    "{{self.__init__.__globals__.__builtins__}}",
    "{{''.__class__.__mro__[1].__subclasses__()}}",
    "{{ ''.__class__.__mro__[2].__subclasses__()[40]('/etc/passwd').read() }}",
    "{{lipsum.__globals__['os'].popen('id').read()}}",
    "{{cycler.__init__.__globals__.os.popen('id').read()}}",
    "{{joiner.__init__.__globals__.os.popen('id').read()}}",
    "{{namespace.__init__.__globals__.os.popen('id').read()}}",
    ("{{request.application.__globals__.__builtins__.__import__('os')"
     ".popen('id').read()}}"),
    ("{{request|attr('application')|attr('\\x5f\\x5fglobals\\x5f\\x5f')"
     "|attr('\\x5f\\x5fgetitem\\x5f\\x5f')('\\x5f\\x5fbuiltins\\x5f\\x5f')"
     "|attr('\\x5f\\x5fgetitem\\x5f\\x5f')('\\x5f\\x5fimport\\x5f\\x5f')('os')"
     "|attr('popen')('id')|attr('read')()}}"),
    ("{% for x in ().__class__.__base__.__subclasses__() %}{% if 'warning' in x.__name__ %}"
     "{{x()._module.__builtins__['__import__']('os').popen('id').read()}}{% endif %}"
     "{% endfor %}"),
    "{{url_for.__globals__.os.environ}}",
    "{{get_flashed_messages.__globals__['current_app'].config}}",
    "{% import os %}{{os.system('id')}}",
    "{{__import__('os').popen('id').read()}}",
    "{{settings.SECRET_KEY}}",
    "{% debug %}",
    # Twig
    '{{_self.env.registerUndefinedFilterCallback("exec")}}{{_self.env.getFilter("id")}}',
    "{{['id']|filter('system')}}",
    "{{['cat /etc/passwd']|map('system')|join}}",
    "{{['id',1]|sort('system')|join}}",
    # Smarty
    "{php}echo `id`;{/php}",
    "{system('id')}",
    "{$smarty.version}",
    ('{Smarty_Internal_Write_File::writeFile($SCRIPT_NAME,"<?php passthru($_GET[\'cmd\']); ?>",'
     "self::clearConfig())}"),
    "{if system('cat /etc/passwd')}{/if}",
    '{self::getStreamVariable("file:///etc/passwd")}',
    # Freemarker
    '<#assign ex="freemarker.template.utility.Execute"?new()>${ex("id")}',
    '${"freemarker.template.utility.Execute"?new()("id")}',
    ('${product.getClass().getProtectionDomain().getCodeSource().getLocation().toURI()'
     '.resolve(\'/etc/passwd\').toURL().openStream().readAllBytes()?join(" ")}'),
    '<#assign classloader=article.class.protectionDomain.classLoader>',
    '${"freemarker.template.utility.ObjectConstructor"?new()("java.lang.ProcessBuilder","id").start()}',
    # Velocity
    ("#set($x='')#set($rt=$x.class.forName('java.lang.Runtime'))"
     "#set($ex=$rt.getRuntime().exec('id'))$ex.waitFor()"),
    ('#set($e="e")$e.getClass().forName("java.lang.Runtime").getMethod("getRuntime",null)'
     '.invoke(null,null).exec("id")'),
    '$class.inspect("java.lang.Runtime").type.getRuntime().exec("id")',
    # Thymeleaf / Spring EL
    "${T(java.lang.Runtime).getRuntime().exec('id')}",
    "*{T(java.lang.Runtime).getRuntime().exec('calc')}",
    '__${T(java.lang.Runtime).getRuntime().exec("id")}__::.x',
    "${T(java.lang.System).getenv()}",
    "#{T(java.lang.Runtime).getRuntime().exec('id')}",
    "${new java.lang.ProcessBuilder({'id'}).start()}",
    "${#rt=@java.lang.Runtime@getRuntime(),#rt.exec('id')}",
    # ERB (Ruby)
    '<%= system("id") %>',
    "<%= `id` %>",
    "<%= File.open('/etc/passwd').read %>",
    "<%= IO.popen('id').readlines() %>",
    "<%= Dir.entries('/') %>",
    # Mako
    "<% import os; x=os.popen('id').read() %>${x}",
    '${self.module.cache.util.os.system("id")}',
    "<%! import os %>${os.system('id')}",
    "${__import__('os').popen('id').read()}",
    # Razor (.NET)
    '@System.Diagnostics.Process.Start("cmd.exe","/c whoami")',
    '@{ var p = System.Diagnostics.Process.Start("cmd.exe", "/c whoami"); }',
    # Pug / Jade, Nunjucks, EJS (Node)
    "#{root.process.mainModule.require('child_process').spawnSync('id').stdout}",
    ('{{range.constructor("return global.process.mainModule.require(\'child_process\')'
     '.execSync(\'id\')")()}}'),
    "<%= global.process.mainModule.require('child_process').execSync('id') %>",
    # Twig and probes found in the wild
    "{{ dump(app) }}",
    "{{'/etc/passwd'|file_excerpt(1,30)}}",
    "{{ app.request.query.filter(0,0,1024,{'options':'system'}) }}",
    "${{<%[%'\"}}%\\.",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('id').read() }}",
    # Handlebars
    ('{{#with "s" as |string|}}{{#with "e"}}{{#with split as |conslist|}}{{this.pop}}'
     '{{this.push (lookup string.sub "constructor")}}{{this.pop}}'
     '{{#with string.split as |codelist|}}{{this.pop}}'
     "{{this.push \"return require('child_process').execSync('id');\"}}{{this.pop}}"
     "{{#each conslist}}{{#with (string.sub.apply 0 codelist)}}{{this}}{{/with}}{{/each}}"
     "{{/with}}{{/with}}{{/with}}{{/with}}"),
]

PLACEMENT_ROTATION = ["query", "form", "json", "multipart", "cookie", "xml", "header", "path"]
ENCODING_ROTATION = ["double-url", "unicode-u", "html-entity"]


def _fits(value: str, where: str) -> bool:
    if where in ("header", "cookie") and not header_safe(value):
        return False
    return not (where == "path" and len(value) > 200)


def build() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = []
    n = len(PLACEMENT_ROTATION)
    for i, payload in enumerate(PAYLOADS):
        for k in range(n):
            where = PLACEMENT_ROTATION[(i + 3 * k) % n]
            if _fits(payload, where):
                tests += cases([payload], family=FAMILY, placements=[where])
                break
        if i % 4 == 0:  # every fourth payload once more, encoded
            enc = ENCODING_ROTATION[(i // 4) % len(ENCODING_ROTATION)]
            value = ENCODINGS[enc](payload)
            for k in range(n):
                where = PLACEMENT_ROTATION[(i + 1 + k) % n]
                if where not in ("cookie", "path") and _fits(value, where):
                    tests += cases([payload], family=FAMILY, placements=[where], encodings=[enc])
                    break
    tests += hand_built()
    return tests


def hand_built() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(inp: dict[str, Any], desc: str, where: str) -> None:
        out.append(case(inp, family=FAMILY, attack=True, desc=desc,
                        tags=[f"placement:{where}", "encoding:plain"]))

    # Common SSTI sinks: a greeting name, an e-mail template preview, a
    # report title in the path, a Jinja probe in a JSON template field.
    add(request("GET", "/hello?name=%7B%7B7*7%7D%7D"), "{{7*7}} in ?name=", "query")
    add(request("POST", "/api/v1/templates/preview",
                {"Host": "api.example.com", "User-Agent": "python-requests/2.32.3",
                 "Content-Type": "application/json"},
                '{"subject": "Hello", "body": "Dear {{ user.name }}, '
                '{{ cycler.__init__.__globals__.os.popen(\'id\').read() }}"}'),
        "Jinja2 RCE hidden after a legitimate placeholder", "json")
    add(request("GET", "/report/%24%7BT(java.lang.Runtime).getRuntime().exec('id')%7D/view"),
        "Spring EL in a path segment", "path")
    add(request("POST", "/newsletter",
                {"Host": "shop.example.com", "User-Agent": "Mozilla/5.0",
                 "Content-Type": "application/x-www-form-urlencoded"},
                "email=a%40b.c&name=%3C%23assign+ex%3D%22freemarker.template.utility.Execute"
                "%22%3Fnew()%3E%24%7Bex(%22id%22)%7D"),
        "Freemarker Execute in a form field", "form")
    return out


def main() -> None:
    write("attacks/1110-ssti.yaml", 1110000, "Server-side template injection",
          ftw_safe(build()))


if __name__ == "__main__":
    main()
